-- People, grants, double-entry transactions, usage, quarantine.
CREATE TABLE people (
    id                 INTEGER PRIMARY KEY,
    email              TEXT NOT NULL COLLATE NOCASE,
    name               TEXT NOT NULL,
    team               TEXT NOT NULL DEFAULT '',
    role               TEXT NOT NULL DEFAULT '',
    manager_id         INTEGER REFERENCES people(id),
    slack_user_id      TEXT,
    teams_user_id      TEXT,
    time_zone          TEXT NOT NULL DEFAULT '',
    nudges_off         INTEGER NOT NULL DEFAULT 0,
    digests_off        INTEGER NOT NULL DEFAULT 0,
    preferred_platform TEXT NOT NULL DEFAULT '',
    joined_at          INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    CONSTRAINT people_email_unique UNIQUE (email)
);
CREATE UNIQUE INDEX people_slack_unique ON people(slack_user_id) WHERE slack_user_id IS NOT NULL;
CREATE UNIQUE INDEX people_teams_unique ON people(teams_user_id) WHERE teams_user_id IS NOT NULL;
CREATE INDEX people_manager ON people(manager_id);
CREATE INDEX people_team ON people(team);

CREATE TABLE transactions (
    id          INTEGER PRIMARY KEY,
    idem_key    TEXT NOT NULL,
    input_hash  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    person_id   INTEGER REFERENCES people(id),
    reason      TEXT NOT NULL DEFAULT '',
    actor       TEXT NOT NULL DEFAULT '',
    reverses_id INTEGER REFERENCES transactions(id),
    created_at  INTEGER NOT NULL,
    CONSTRAINT transactions_key_unique UNIQUE (idem_key)
);
CREATE UNIQUE INDEX transactions_one_reversal ON transactions(reverses_id) WHERE reverses_id IS NOT NULL;
CREATE INDEX transactions_person ON transactions(person_id, id);

CREATE TABLE postings (
    id      INTEGER PRIMARY KEY,
    tx_id   INTEGER NOT NULL REFERENCES transactions(id),
    account TEXT NOT NULL,
    amount  INTEGER NOT NULL
);
CREATE INDEX postings_tx ON postings(tx_id);

-- Running balances, kept in the same write as the postings; `ledger verify` recomputes them.
CREATE TABLE accounts (
    name    TEXT PRIMARY KEY,
    balance INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE grants (
    id           INTEGER PRIMARY KEY,
    tx_id        INTEGER NOT NULL REFERENCES transactions(id),
    person_id    INTEGER NOT NULL REFERENCES people(id),
    kind         TEXT NOT NULL,
    amount       INTEGER NOT NULL CHECK (amount > 0),
    remaining    INTEGER NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    priority     INTEGER NOT NULL,
    effective_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    closed_tx_id INTEGER REFERENCES transactions(id)
);
CREATE INDEX grants_open ON grants(person_id, priority, expires_at, id) WHERE closed_tx_id IS NULL;
CREATE INDEX grants_tx ON grants(tx_id);

CREATE TABLE usage_events (
    id            INTEGER PRIMARY KEY,
    event_id      TEXT NOT NULL,
    person_id     INTEGER NOT NULL REFERENCES people(id),
    tx_id         INTEGER NOT NULL REFERENCES transactions(id),
    model         TEXT NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    credits       INTEGER NOT NULL,
    overage       INTEGER NOT NULL,
    occurred_at   INTEGER NOT NULL,
    source        TEXT NOT NULL DEFAULT '',
    received_at   INTEGER NOT NULL,
    reversed      INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT usage_event_unique UNIQUE (event_id)
);
CREATE INDEX usage_person_time ON usage_events(person_id, occurred_at, credits, overage, reversed);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL,
    payload     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    resolved_at INTEGER,
    CONSTRAINT quarantine_event_unique UNIQUE (event_id)
);
CREATE INDEX quarantine_open ON quarantine(id) WHERE resolved_at IS NULL;

-- Requests, impact, keys, audit.
CREATE TABLE requests (
    id               INTEGER PRIMARY KEY,
    requester_id     INTEGER NOT NULL REFERENCES people(id),
    approver_id      INTEGER REFERENCES people(id),
    amount           INTEGER NOT NULL CHECK (amount > 0),
    use_case         TEXT NOT NULL,
    status           TEXT NOT NULL,
    needs_admin      INTEGER NOT NULL DEFAULT 0,
    manager_approval INTEGER REFERENCES people(id),
    decided_by       INTEGER REFERENCES people(id),
    decided_at       INTEGER,
    note             TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    grant_id         INTEGER REFERENCES grants(id)
);
CREATE INDEX requests_status ON requests(status, expires_at);
CREATE INDEX requests_requester ON requests(requester_id, id);
CREATE INDEX requests_approver ON requests(approver_id, status);

CREATE TABLE impacts (
    id           INTEGER PRIMARY KEY,
    person_id    INTEGER NOT NULL REFERENCES people(id),
    text         TEXT NOT NULL,
    minutes      INTEGER NOT NULL DEFAULT 0,
    link         TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    validated_by INTEGER REFERENCES people(id),
    validated_at INTEGER
);
CREATE INDEX impacts_person ON impacts(person_id, created_at);

CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used  INTEGER,
    revoked_at INTEGER,
    CONSTRAINT api_keys_hash_unique UNIQUE (key_hash)
);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT ''
);
