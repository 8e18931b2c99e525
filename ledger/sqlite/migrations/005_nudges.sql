-- The scheduler, the durable outbox and the nudge log.
--
-- Two clocks appear below. "Business" times follow the ledger's clock (TOKENPAY_NOW in
-- trials and tests): schedule slots, quiet hours, when a message was sent. "Wall" times
-- are always real: heartbeats, and when a failed delivery may be retried.

-- One row per job and period (the schedule slot). The primary key is the claim: two
-- processes on one database never run the same job period twice.
CREATE TABLE job_runs (
    job         TEXT NOT NULL,
    period_key  TEXT NOT NULL,          -- the slot in UTC, e.g. "2026-11-23T09:00Z"
    slot_at     INTEGER NOT NULL,       -- business
    run_at      INTEGER NOT NULL,       -- business: the time the run computed as
    owner       TEXT NOT NULL,          -- the worker that claimed it last
    status      TEXT NOT NULL,          -- running, done, failed, skipped
    attempts    INTEGER NOT NULL DEFAULT 1,
    started_at  INTEGER NOT NULL,       -- wall
    finished_at INTEGER,                -- wall; NULL while running or after a failure
    result      TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job, period_key)
) WITHOUT ROWID;
CREATE INDEX job_runs_latest ON job_runs(job, slot_at);

-- Processes that claim job runs or messages. A claim whose owner stopped beating (or whose
-- process is gone) is taken over.
CREATE TABLE workers (
    owner        TEXT PRIMARY KEY,
    started_at   INTEGER NOT NULL,      -- wall
    heartbeat_at INTEGER NOT NULL       -- wall
) WITHOUT ROWID;

-- Every message the scheduler sends. The unique key (kind, person, period) makes a
-- repeated or resumed job enqueue nothing twice; status moves pending -> sending -> sent,
-- or to dead (after the policy's attempts) or unreachable (no platform).
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    person_id   INTEGER NOT NULL REFERENCES people(id),
    period_key  TEXT NOT NULL,
    payload     TEXT NOT NULL,          -- the neutral reply as JSON (bot.MarshalReply)
    status      TEXT NOT NULL DEFAULT 'pending',
    not_before  INTEGER NOT NULL,       -- business: held until then (quiet hours)
    hold_reason TEXT NOT NULL DEFAULT '',
    retry_at    INTEGER NOT NULL DEFAULT 0,   -- wall: after a failure or a 429
    attempts    INTEGER NOT NULL DEFAULT 0,   -- failed attempts (a 429 is not a failure)
    owner       TEXT NOT NULL DEFAULT '',     -- the worker delivering it while sending
    last_error  TEXT NOT NULL DEFAULT '',
    platform    TEXT NOT NULL DEFAULT '',     -- where it landed, so it can be updated later
    channel     TEXT NOT NULL DEFAULT '',
    message_id  TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,       -- business
    sent_at     INTEGER,                -- business
    CONSTRAINT outbox_dedupe UNIQUE (kind, person_id, period_key)
);
CREATE INDEX outbox_open ON outbox(not_before, id) WHERE status IN ('pending', 'sending');
CREATE INDEX outbox_status ON outbox(status, created_at);

-- Who was nudged, or would have been but is in the holdout group, at each nudge run: the
-- cadence cap reads it, and the admin report measures the lift nudges cause from it.
CREATE TABLE nudge_log (
    person_id INTEGER NOT NULL REFERENCES people(id),
    run_key   TEXT NOT NULL,
    at        INTEGER NOT NULL,         -- business
    segment   TEXT NOT NULL,
    held_out  INTEGER NOT NULL,
    PRIMARY KEY (person_id, run_key)
) WITHOUT ROWID;
CREATE INDEX nudge_log_at ON nudge_log(at);
