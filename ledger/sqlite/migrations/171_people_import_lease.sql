-- One directory import at a time per database, across processes (an admin's CLI beside
-- serve, or replicas of one PostgreSQL ledger): the import in progress holds this row
-- from BeginPeopleImport to Apply or Discard, so two imports never mix their rows in
-- people_staging or empty each other's. holder is the import's random token; touched_at
-- (wall clock, ms) moves with each chunk it stages. An import idle for longer than
-- sqlstore.ImportIdleLimit was killed: the next import takes the row over and empties
-- the staging table. No row: no import in progress.
CREATE TABLE people_import_lease (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    holder     TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    touched_at INTEGER NOT NULL
);
