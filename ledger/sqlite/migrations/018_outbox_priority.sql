-- The outbox delivers by priority: replies about a person's own requests first, then
-- heads-ups, then digests and reports, then nudges (lower first), so that a large digest
-- never holds back what a person is waiting for. Rows queued before this migration take
-- the digests' rank.
ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 2;
CREATE INDEX outbox_due ON outbox(priority, not_before, id) WHERE status = 'pending';
