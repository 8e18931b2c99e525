-- The same as ledger/sqlite/migrations/182_rollup_fk_indexes.sql: PostgreSQL too checks
-- every foreign key to transactions when the roll-up deletes one, and without an index on
-- the referencing column that check scans the table.
CREATE INDEX grants_closed_tx ON grants(closed_tx_id) WHERE closed_tx_id IS NOT NULL;
CREATE INDEX usage_adjustments_tx ON usage_adjustments(tx_id);
