-- Usage connectors (LiteLLM, OpenTelemetry, OpenAI, Anthropic).

-- One row per connector: how far its pull job has read and how its last run went.
CREATE TABLE connector_state (
    connector     TEXT PRIMARY KEY,
    cursor        INTEGER NOT NULL DEFAULT 0,  -- unix ms; the next run reads from here (less the reread window)
    last_run_at   INTEGER NOT NULL DEFAULT 0,
    last_ok_at    INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT '',
    last_error_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- What each vendor bucket (start, identity, model) has been booked at so far: a re-read
-- bucket that grew is booked as the difference, under the next revision's event id.
CREATE TABLE connector_buckets (
    connector     TEXT NOT NULL,
    bucket        TEXT NOT NULL,
    input_tokens  INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    revision      INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (connector, bucket)
) WITHOUT ROWID;

-- Events a connector decided to book but has not handed to ingestion yet: written in the
-- same transaction as the bucket totals, so a crash in between loses nothing (the next run
-- posts them; ingestion is idempotent by event id). identity is the vendor id still
-- waiting for a mapping ('' when the event names its person).
CREATE TABLE connector_pending (
    event_id   TEXT PRIMARY KEY,
    connector  TEXT NOT NULL,
    identity   TEXT NOT NULL,
    event      TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX connector_pending_by ON connector_pending(connector, identity);
