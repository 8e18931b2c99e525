-- Where the bot's messages live on each platform, so they can be updated in place
-- (approval messages, digests), and platform deliveries already handled (retries).
CREATE TABLE message_refs (
    platform   TEXT NOT NULL,
    subject    TEXT NOT NULL,   -- e.g. "request:12:parent"
    channel    TEXT NOT NULL,
    message_id TEXT NOT NULL,   -- Slack ts, Teams activity id
    thread_id  TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (platform, subject)
) WITHOUT ROWID;

CREATE TABLE deliveries_seen (
    platform TEXT NOT NULL,
    id       TEXT NOT NULL,     -- Slack event_id, Teams activity id
    seen_at  INTEGER NOT NULL,
    PRIMARY KEY (platform, id)
) WITHOUT ROWID;
