-- Usage that arrives after a grant of its person started or ended, but is dated before,
-- is burned again in time order with the rest of the period (issue 12). These indexes let
-- a batch ask in two probes whether any open grant starts or ends in the span its events
-- cover; nearly always none does.
CREATE INDEX grants_open_effective ON grants(effective_at) WHERE closed_tx_id IS NULL;
CREATE INDEX grants_open_expires ON grants(expires_at) WHERE closed_tx_id IS NULL;
