-- The shared prompt library and the fluency path.
--
-- Tags and roles are stored space-separated (each is kebab-case, so a space never occurs
-- inside one); the full-text index reads tags and workflow as words too.
CREATE TABLE prompts (
    id         INTEGER PRIMARY KEY,
    slug       TEXT,                    -- starter prompts only; NULL for prompts people share
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    tags       TEXT NOT NULL DEFAULT '',
    roles      TEXT NOT NULL DEFAULT '',
    workflow   TEXT NOT NULL DEFAULT '',
    author_id  INTEGER REFERENCES people(id),
    featured   INTEGER NOT NULL DEFAULT 0,
    hidden     INTEGER NOT NULL DEFAULT 0,
    uses       INTEGER NOT NULL DEFAULT 0,
    votes      INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CONSTRAINT prompts_slug_unique UNIQUE (slug)
);
CREATE INDEX prompts_top ON prompts(hidden, featured, votes);
CREATE INDEX prompts_author ON prompts(author_id);

-- FTS4, not FTS5: mattn/go-sqlite3's default build has FTS3/4 only. External content keeps
-- one copy of each text; the triggers keep the index in step, and fire only when an
-- indexed column changes, so a vote or a use does not re-index the prompt.
CREATE VIRTUAL TABLE prompts_fts USING fts4(content="prompts", title, body, tags, workflow, tokenize=unicode61);

CREATE TRIGGER prompts_fts_insert AFTER INSERT ON prompts BEGIN
    INSERT INTO prompts_fts(docid, title, body, tags, workflow) VALUES (new.id, new.title, new.body, new.tags, new.workflow);
END;
CREATE TRIGGER prompts_fts_before_update BEFORE UPDATE OF title, body, tags, workflow ON prompts BEGIN
    DELETE FROM prompts_fts WHERE docid = old.id;
END;
CREATE TRIGGER prompts_fts_after_update AFTER UPDATE OF title, body, tags, workflow ON prompts BEGIN
    INSERT INTO prompts_fts(docid, title, body, tags, workflow) VALUES (new.id, new.title, new.body, new.tags, new.workflow);
END;
CREATE TRIGGER prompts_fts_delete BEFORE DELETE ON prompts BEGIN
    DELETE FROM prompts_fts WHERE docid = old.id;
END;

-- One vote per person and prompt: the primary key is what makes a second click a no-op.
CREATE TABLE prompt_votes (
    prompt_id  INTEGER NOT NULL REFERENCES prompts(id),
    person_id  INTEGER NOT NULL REFERENCES people(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (prompt_id, person_id)
) WITHOUT ROWID;

-- Every use counts, so uses are rows, not a set.
CREATE TABLE prompt_uses (
    id        INTEGER PRIMARY KEY,
    prompt_id INTEGER NOT NULL REFERENCES prompts(id),
    person_id INTEGER NOT NULL REFERENCES people(id),
    used_at   INTEGER NOT NULL
);
CREATE INDEX prompt_uses_person ON prompt_uses(person_id, prompt_id);

-- Tips already offered to a person (in a nudge or a digest), never offered again.
CREATE TABLE prompt_shown (
    person_id INTEGER NOT NULL REFERENCES people(id),
    prompt_id INTEGER NOT NULL REFERENCES prompts(id),
    shown_at  INTEGER NOT NULL,
    PRIMARY KEY (person_id, prompt_id)
) WITHOUT ROWID;

CREATE TABLE lesson_progress (
    person_id    INTEGER NOT NULL REFERENCES people(id),
    lesson_id    TEXT NOT NULL,
    reflection   TEXT NOT NULL,
    completed_at INTEGER NOT NULL,
    PRIMARY KEY (person_id, lesson_id)
) WITHOUT ROWID;
