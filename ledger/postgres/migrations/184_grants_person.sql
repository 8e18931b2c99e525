-- The same as ledger/sqlite/migrations/184_grants_person.sql: a person's grants, newest
-- first, without walking every grant.
CREATE INDEX grants_person ON grants(person_id, id);
