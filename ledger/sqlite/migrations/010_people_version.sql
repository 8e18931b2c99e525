-- Bumped whenever an identity that usage names (email, Slack or Teams id) changes or goes
-- away, so a process can cache identity -> person and drop the cache when another process
-- (or itself) changes the directory.
CREATE TABLE people_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO people_version(id, version) VALUES (1, 0);
CREATE TRIGGER people_identity_changed AFTER UPDATE OF email, slack_user_id, teams_user_id ON people
BEGIN
    UPDATE people_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER people_deleted AFTER DELETE ON people
BEGIN
    UPDATE people_version SET version = version + 1 WHERE id = 1;
END;
