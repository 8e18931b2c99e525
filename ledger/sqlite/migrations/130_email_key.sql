-- The key people are found by email: ledger.NormalizeEmail (Unicode case folding and NFC),
-- which the process registers as tokenpay_email_key. The email column keeps the spelling
-- the directory gave, for display; its NOCASE collation folds ASCII only, so it cannot
-- match "ÉLISE@acme.test" with "élise@acme.test" and is no longer used to find anyone.
ALTER TABLE people ADD COLUMN email_key TEXT;
-- Addresses that NOCASE kept apart but the key joins (an import of "élise@" beside an
-- earlier "Élise@") keep their rows; the oldest gets the key, so lookups stay unambiguous,
-- and the others are found by id until the directory merges them.
UPDATE people SET email_key = tokenpay_email_key(email)
    WHERE id = (SELECT min(p2.id) FROM people p2 WHERE tokenpay_email_key(p2.email) = tokenpay_email_key(people.email));
CREATE UNIQUE INDEX people_email_key ON people(email_key) WHERE email_key IS NOT NULL;
