-- A person's balances are projections of grants and usage rows, checked against postings by
-- verify; the running totals of person accounts are no longer kept.
DELETE FROM accounts WHERE name LIKE 'person:%';
-- History reads usage from usage_events; the per-person transaction index skips usage.
DROP INDEX transactions_person;
CREATE INDEX transactions_person ON transactions(person_id, id) WHERE kind <> 'usage';
