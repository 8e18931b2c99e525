-- ledger/sqlite/migrations/171_people_import_lease.sql, translated: the directory import
-- in progress holds this row, so imports on several replicas run one at a time instead of
-- mixing their rows in people_staging or emptying each other's. UNLOGGED like
-- people_staging: a crash (or a failover to a standby) empties both together, and the
-- import in flight is told to run again instead of applying part of its file.
CREATE UNLOGGED TABLE people_import_lease (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    holder     TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    touched_at BIGINT NOT NULL
);
