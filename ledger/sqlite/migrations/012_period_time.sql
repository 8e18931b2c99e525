-- Usage counts in the period in which it happened (issue 12).
--
-- period_closes records, per person and boundary, what a period reset did: what was unspent
-- in the grants ending at the boundary, what was carried (and into which grant) and under
-- which rollover limits. A late event charged to a closed period updates the row, so a
-- second late event starts from the first's result, and takes back from what was expired
-- or carried with the same formula.
CREATE TABLE period_closes (
    reset_tx_id       INTEGER PRIMARY KEY REFERENCES transactions(id),
    person_id         INTEGER NOT NULL REFERENCES people(id),
    period_key        TEXT NOT NULL,       -- the period closed, e.g. "2026-11"
    boundary          INTEGER NOT NULL,    -- ms UTC: its end, the next period's start
    next_end          INTEGER NOT NULL,    -- ms UTC: the end of the period opened
    unspent           INTEGER NOT NULL,    -- credits left at the close, late usage deducted
    carried           INTEGER NOT NULL,    -- min(max, max(unspent, min))
    rollover_max      INTEGER NOT NULL,
    rollover_min      INTEGER NOT NULL,
    rollover_grant_id INTEGER REFERENCES grants(id),
    CONSTRAINT period_closes_once UNIQUE (person_id, boundary)
);
CREATE INDEX period_closes_boundary ON period_closes(boundary);

-- What each grant a close ended still held (late usage deducted): a late event burns these.
CREATE TABLE closed_grants (
    grant_id    INTEGER PRIMARY KEY REFERENCES grants(id),
    reset_tx_id INTEGER NOT NULL REFERENCES period_closes(reset_tx_id),
    remaining   INTEGER NOT NULL CHECK (remaining >= 0)
);

-- Changes to a usage event's overage after it was booked: usage dated in a period booked
-- before that period's grants existed is settled against them (negative: overage turned
-- into spending), and spending a late event takes from a later period turns back into
-- overage (positive). The transaction (tx_id) carries the balanced postings; an event's
-- overage is its row's plus these.
CREATE TABLE usage_adjustments (
    id          INTEGER PRIMARY KEY,
    tx_id       INTEGER NOT NULL REFERENCES transactions(id),
    usage_tx_id INTEGER NOT NULL REFERENCES usage_events(tx_id),
    person_id   INTEGER NOT NULL REFERENCES people(id),
    occurred_at INTEGER NOT NULL,          -- the event's, so period sums need no join
    overage     INTEGER NOT NULL
);
CREATE INDEX usage_adjustments_person ON usage_adjustments(person_id, occurred_at);
CREATE INDEX usage_adjustments_event ON usage_adjustments(usage_tx_id);
