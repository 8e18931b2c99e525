-- History that does not slow the present (issue 18).
--
-- A usage row may stand for several events: the roll-up (sqlstore.RollUpUsage) replaces the
-- rows of one person, model and source on one day of the org's calendar, in a period that
-- closed longer ago than usage.retention_months, by one row with their sums. events is how
-- many events a row stands for (1 for every row ingestion writes), so counts of events stay
-- exact after a roll-up.
ALTER TABLE usage_events ADD COLUMN events INTEGER NOT NULL DEFAULT 1 CHECK (events >= 1);

-- How far the roll-up got: every usage row dated before rolled_before (ms UTC) has been
-- rolled up, so the next run reads only from there.
CREATE TABLE usage_rollup (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    rolled_before INTEGER NOT NULL,
    rolled_at     INTEGER NOT NULL
);
