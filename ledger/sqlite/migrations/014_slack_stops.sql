-- Slack installs that ended (issue 14): when Slack says the app was uninstalled or its bot
-- token revoked, nothing more is sent with that token, also after a restart. The token is
-- kept only as its SHA-256; a reinstall brings a new token, which is not stopped.
CREATE TABLE slack_stops (
    token_sha256 TEXT PRIMARY KEY,    -- hex SHA-256 of the bot token
    team_id      TEXT NOT NULL,       -- the workspace Slack named, or ''
    reason       TEXT NOT NULL,       -- app_uninstalled, tokens_revoked, or the Web API's error
    stopped_at   INTEGER NOT NULL     -- ms UTC
);
