-- Deleting a transaction (the roll-up deletes the transactions of the usage it rolls up,
-- issue 18) makes the engine look for rows that still name it, in every table with a
-- foreign key to transactions. grants.closed_tx_id and usage_adjustments.tx_id had no index,
-- so each deleted transaction scanned all grants and all adjustments: rolling up 274,000
-- usage rows of 100 people took 99 s, superlinear in the directory's size. With these
-- indexes each check is one probe.
CREATE INDEX grants_closed_tx ON grants(closed_tx_id) WHERE closed_tx_id IS NOT NULL;
CREATE INDEX usage_adjustments_tx ON usage_adjustments(tx_id);
