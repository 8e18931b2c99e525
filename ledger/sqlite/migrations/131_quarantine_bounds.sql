-- Quarantine is bounded per API key (ledger.MaxQuarantinePerKey events waiting, none older
-- than ledger.MaxQuarantineAge): the key that sent each event, NULL for file imports and
-- connectors, which an operator runs.
ALTER TABLE quarantine ADD COLUMN api_key_id INTEGER; -- api_keys.id (keys are revoked, never deleted)
CREATE INDEX quarantine_key_open ON quarantine(api_key_id) WHERE resolved_at IS NULL;
CREATE INDEX quarantine_age_open ON quarantine(created_at) WHERE resolved_at IS NULL;
-- What the directory looked like at the last replay ("version/people/max id"): a replay
-- with nothing new in the directory has nothing to do.
CREATE TABLE quarantine_replay (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    directory TEXT NOT NULL
);
