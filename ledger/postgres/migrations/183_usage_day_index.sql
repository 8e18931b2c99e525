-- The same as ledger/sqlite/migrations/183_usage_day_index.sql: day first, new events land
-- in the index pages of the last day or so instead of one page each across the history.
CREATE INDEX usage_day_person ON usage_events ((occurred_at / 86400000), person_id, occurred_at);
CREATE INDEX usage_reversed ON usage_events(person_id, occurred_at) WHERE reversed = 1;
DROP INDEX usage_person_time;
