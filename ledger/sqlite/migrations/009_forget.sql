-- People erased on request (`tokenpay people forget`) keep their row under a pseudonym, so
-- that the ledger's amounts and every total stay true; forgotten_at says when it happened.
ALTER TABLE people ADD COLUMN forgotten_at INTEGER;
