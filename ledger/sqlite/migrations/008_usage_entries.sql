-- A usage event is its own balanced entry: its row implies the postings
-- person:N:spent +credits, person:N:available -(credits - overage), person:N:overage -overage,
-- so they are not stored twice. Its rowid is its transaction's id; idempotency stays on
-- transactions.idem_key ("usage:<event id>").
CREATE TABLE usage_entries (
    tx_id         INTEGER PRIMARY KEY REFERENCES transactions(id),
    event_id      TEXT NOT NULL,
    person_id     INTEGER NOT NULL REFERENCES people(id),
    model         TEXT NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    credits       INTEGER NOT NULL,
    overage       INTEGER NOT NULL,
    occurred_at   INTEGER NOT NULL,
    source        TEXT NOT NULL DEFAULT '',
    received_at   INTEGER NOT NULL,
    reversed      INTEGER NOT NULL DEFAULT 0,
    CHECK (credits >= 0 AND overage >= 0 AND overage <= credits)
);
INSERT INTO usage_entries(tx_id, event_id, person_id, model, input_tokens, output_tokens, credits, overage, occurred_at, source, received_at, reversed)
    SELECT tx_id, event_id, person_id, model, input_tokens, output_tokens, credits, overage, occurred_at, source, received_at, reversed FROM usage_events;
DELETE FROM postings WHERE tx_id IN (SELECT tx_id FROM usage_events);
DROP TABLE usage_events;
ALTER TABLE usage_entries RENAME TO usage_events;
CREATE INDEX usage_person_time ON usage_events(person_id, occurred_at);

-- Every posting of the ledger, stored or implied by a usage row.
CREATE VIEW ledger_postings(tx_id, account, amount) AS
    SELECT tx_id, account, amount FROM postings
    UNION ALL SELECT tx_id, 'person:' || person_id || ':spent', credits FROM usage_events WHERE credits != 0
    UNION ALL SELECT tx_id, 'person:' || person_id || ':available', overage - credits FROM usage_events WHERE credits != overage
    UNION ALL SELECT tx_id, 'person:' || person_id || ':overage', -overage FROM usage_events WHERE overage != 0;
