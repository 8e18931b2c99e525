-- The web dashboard: one-time sign-in links and browser sessions. Only SHA-256 hashes of
-- the secrets are stored, as for API keys, so a copy of the database signs no one in.
CREATE TABLE login_links (
    token_hash TEXT PRIMARY KEY,              -- hex SHA-256 of the token in the link
    person_id  INTEGER NOT NULL REFERENCES people(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER                        -- set by the one use; NULL while unused
) WITHOUT ROWID;

CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,              -- hex SHA-256 of the session cookie
    person_id  INTEGER NOT NULL REFERENCES people(id),
    csrf       TEXT NOT NULL,                 -- the token every form of the session carries
    via        TEXT NOT NULL,                 -- 'link' or 'oidc'
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_person ON web_sessions(person_id);
