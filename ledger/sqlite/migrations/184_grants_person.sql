-- A person's grants, newest first (Store.Grants: the allowance lines of every /tokens
-- balance, the dashboard's history) had only the partial index of open grants, so SQLite
-- walked every grant of the ledger by id until it found the person's: about 12 ms per
-- /tokens balance over 100,000 people, most of the command's time (issue 18's benchmark of
-- the whole process).
CREATE INDEX grants_person ON grants(person_id, id);
