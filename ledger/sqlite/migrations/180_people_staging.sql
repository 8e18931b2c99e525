-- people import stages a directory file here in chunks, then applies it in one
-- transaction with set-based statements: a file of a million people in bounded memory,
-- still all or nothing. Empty between imports.
CREATE TABLE people_staging (
    line          INTEGER NOT NULL,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL,
    name          TEXT NOT NULL,
    team          TEXT NOT NULL,
    role          TEXT NOT NULL,
    manager_email TEXT NOT NULL,
    manager_key   TEXT NOT NULL,
    slack_user_id TEXT,
    teams_user_id TEXT
);
CREATE INDEX people_staging_key ON people_staging(email_key, line);
CREATE INDEX people_staging_slack ON people_staging(slack_user_id) WHERE slack_user_id IS NOT NULL;
CREATE INDEX people_staging_teams ON people_staging(teams_user_id) WHERE teams_user_id IS NOT NULL;
