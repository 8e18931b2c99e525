-- Prompt search folds case and drops diacritics as SQLite's FTS4 unicode61 tokenizer
-- does, whatever the database's locale: 'simple' lowercases by the locale (only ASCII
-- letters under C, the test clusters' and many servers' locale) and keeps diacritics, so
-- "Ünïcode" in a prompt was not found by "unicode" or "ÜNÏCODE" here while SQLite found
-- it. prompts_fold(t) decomposes t (NFD), drops the combining diacritical marks (U+0300 to
-- U+036F: the accents of Latin letters, as unicode61's remove_diacritics) and lowercases
-- with ICU's root locale when the server has ICU (Debian's packages and the usual managed
-- services do), else by the database's locale. The store folds the query with the same
-- function (ledger/internal/sqlstore: matchPromptsTS), so both sides always agree.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu') THEN
        CREATE FUNCTION prompts_fold(t TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE
            RETURN lower(regexp_replace(normalize(t, NFD), '[\u0300-\u036f]', '', 'g') COLLATE "und-x-icu");
    ELSE
        CREATE FUNCTION prompts_fold(t TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE
            RETURN lower(regexp_replace(normalize(t, NFD), '[\u0300-\u036f]', '', 'g'));
    END IF;
END
$$;

-- The same weights as 001_schema.sql, over the folded text.
CREATE OR REPLACE FUNCTION prompts_search(title TEXT, body TEXT, tags TEXT, workflow TEXT) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN setweight(to_tsvector('simple'::regconfig, prompts_fold(title)), 'A')
        || setweight(to_tsvector('simple'::regconfig, prompts_fold(tags)), 'B')
        || setweight(to_tsvector('simple'::regconfig, prompts_fold(workflow)), 'C')
        || setweight(to_tsvector('simple'::regconfig, prompts_fold(body)), 'D');
-- An index over a function keeps what the old body computed until it is rebuilt.
REINDEX INDEX prompts_fts;
