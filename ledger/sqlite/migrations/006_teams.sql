-- Teams conversation references, stored on install and refreshed on every message, so the
-- bot can write first (digests, nudges, approval cards) after a restart.
CREATE TABLE teams_conversations (
    aad_object_id   TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,   -- the "29:…" id in this bot's conversations
    conversation_id TEXT NOT NULL,
    service_url     TEXT NOT NULL,
    tenant_id       TEXT NOT NULL DEFAULT '',
    bot_id          TEXT NOT NULL,
    bot_name        TEXT NOT NULL DEFAULT '',
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
