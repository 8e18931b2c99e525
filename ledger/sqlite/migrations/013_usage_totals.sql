-- What each person's usage cost per allowance period, so that ingestion can hold the bound
-- on one person's usage in a period (ledger.MaxPeriodCredits) without summing the period's
-- rows for every batch. period_start is the period's start (ms since the epoch, UTC) as the
-- policy placed it when the row was written. A row is filled from usage_events the first
-- time a batch touches that person and period, then kept in the same write as each batch.
-- A reversed event is not taken back out: the bound only ever errs on the safe side.
CREATE TABLE usage_totals (
    person_id    INTEGER NOT NULL REFERENCES people(id),
    period_start INTEGER NOT NULL,
    credits      INTEGER NOT NULL CHECK (credits >= 0),
    PRIMARY KEY (person_id, period_start)
) WITHOUT ROWID;
