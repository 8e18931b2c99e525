-- History that does not slow the present (issue 18): the same as
-- ledger/sqlite/migrations/181_usage_rollup.sql, whose comments say why.
ALTER TABLE usage_events ADD COLUMN events BIGINT NOT NULL DEFAULT 1 CHECK (events >= 1);

CREATE TABLE usage_rollup (
    id            BIGINT PRIMARY KEY CHECK (id = 1),
    rolled_before BIGINT NOT NULL,
    rolled_at     BIGINT NOT NULL
);
