package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/tokenpay/tokenpay/ledger"
)

const promptColumns = `p.id, COALESCE(p.slug, ''), p.title, p.body, p.tags, p.roles, p.workflow, COALESCE(p.author_id, 0),
	COALESCE(a.name, ''), (SELECT count(*) FROM impacts i WHERE i.person_id = p.author_id) AS author_impacts,
	p.featured, p.hidden, p.uses, p.votes, p.created_at, p.updated_at`

const promptFrom = ` FROM prompts p LEFT JOIN people a ON a.id = p.author_id `

func scanPrompt(s scanner, extra ...any) (ledger.Prompt, error) {
	var p ledger.Prompt
	var tags, roles string
	var created, updated int64
	dest := []any{&p.ID, &p.Slug, &p.Title, &p.Body, &tags, &roles, &p.Workflow, &p.AuthorID,
		&p.AuthorName, &p.AuthorImpacts, &p.Featured, &p.Hidden, &p.Uses, &p.Votes, &created, &updated}
	err := s.Scan(append(dest, extra...)...)
	p.Tags, p.Roles = strings.Fields(tags), strings.Fields(roles)
	p.CreatedAt, p.UpdatedAt = fromMs(created), fromMs(updated)
	return p, err
}

func (db *Store) promptsWhere(ctx context.Context, where string, args ...any) ([]ledger.Prompt, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+promptColumns+promptFrom+`WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledger.Prompt
	for rows.Next() {
		p, err := scanPrompt(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Prompt returns one prompt, hidden or not.
func (db *Store) Prompt(ctx context.Context, id int64) (ledger.Prompt, error) {
	ps, err := db.promptsWhere(ctx, `p.id = ?`, id)
	if err != nil {
		return ledger.Prompt{}, fmt.Errorf("read prompt %d: %w", id, err)
	}
	if len(ps) == 0 {
		return ledger.Prompt{}, ledger.Errorf(ledger.NotFound, "prompt %d is not in the library", id)
	}
	return ps[0], nil
}

func checkPromptInput(in ledger.PromptInput) error {
	if strings.TrimSpace(in.Title) == "" || strings.TrimSpace(in.Body) == "" {
		return ledger.Errorf(ledger.Invalid, "a prompt needs a title and a body")
	}
	for _, list := range [][]string{in.Tags, in.Roles} {
		for _, w := range list {
			// Lists are stored space-separated.
			if w == "" || strings.ContainsFunc(w, unicode.IsSpace) {
				return ledger.Errorf(ledger.Invalid, "tag or role %q must be one word", w)
			}
		}
	}
	return nil
}

// SeedPrompts loads prompts keyed by slug: a new slug is added, a known one has its text
// brought up to date (votes, uses and moderation stay), an unchanged one is left alone.
func (db *Store) SeedPrompts(ctx context.Context, in []ledger.PromptInput) (added, updated int, err error) {
	now := ms(db.now())
	err = db.inTx(ctx, func(tx *Tx) error {
		known := map[string]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT slug FROM prompts WHERE slug IS NOT NULL`)
		if err != nil {
			return fmt.Errorf("list seeded prompts: %w", err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return err
			}
			known[s] = true
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, p := range in {
			if p.Slug == "" {
				return ledger.Errorf(ledger.Invalid, "prompt %q: a seeded prompt needs a slug", p.Title)
			}
			if err := checkPromptInput(p); err != nil {
				return fmt.Errorf("prompt %s: %w", p.Slug, err)
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO prompts(slug, title, body, tags, roles, workflow, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (slug) DO UPDATE SET title = excluded.title, body = excluded.body, tags = excluded.tags,
					roles = excluded.roles, workflow = excluded.workflow, updated_at = excluded.updated_at
				WHERE prompts.title <> excluded.title OR prompts.body <> excluded.body OR prompts.tags <> excluded.tags
					OR prompts.roles <> excluded.roles OR prompts.workflow <> excluded.workflow`,
				p.Slug, p.Title, p.Body, strings.Join(p.Tags, " "), strings.Join(p.Roles, " "), p.Workflow, now, now)
			if err != nil {
				return fmt.Errorf("seed prompt %s: %w", p.Slug, err)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				if known[p.Slug] {
					updated++
				} else {
					added++
				}
			}
			known[p.Slug] = true
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return added, updated, nil
}

// AddPrompt adds a prompt someone shared.
func (db *Store) AddPrompt(ctx context.Context, in ledger.PromptInput) (ledger.Prompt, error) {
	if err := checkPromptInput(in); err != nil {
		return ledger.Prompt{}, err
	}
	var id int64
	err := db.inTx(ctx, func(tx *Tx) error {
		if in.AuthorID != 0 {
			if err := personExists(ctx, tx, in.AuthorID); err != nil {
				return err
			}
		}
		now := ms(db.now())
		err := tx.QueryRowContext(ctx, `INSERT INTO prompts(slug, title, body, tags, roles, workflow, author_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, nullStr(in.Slug), in.Title, in.Body, strings.Join(in.Tags, " "),
			strings.Join(in.Roles, " "), in.Workflow, nullID(in.AuthorID), now, now).Scan(&id)
		if db.isUnique(err, "prompts.slug") {
			return ledger.Errorf(ledger.Conflict, "a prompt with the slug %q already exists", in.Slug)
		}
		if err != nil {
			return fmt.Errorf("add prompt: %w", err)
		}
		return nil
	})
	if err != nil {
		return ledger.Prompt{}, err
	}
	return db.Prompt(ctx, id)
}

// visiblePrompt reads a prompt inside a write transaction; a hidden one is as good as gone.
func visiblePrompt(ctx context.Context, tx *Tx, id int64) (authorID int64, err error) {
	var hidden bool
	var author sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT hidden, author_id FROM prompts WHERE id = ?`, id).Scan(&hidden, &author)
	if errors.Is(err, sql.ErrNoRows) || hidden {
		return 0, ledger.Errorf(ledger.NotFound, "That prompt is no longer in the library.")
	}
	if err != nil {
		return 0, fmt.Errorf("read prompt %d: %w", id, err)
	}
	return author.Int64, nil
}

// VotePrompt records that a person found a prompt useful. One vote per person: a second
// click (or a concurrent one) changes nothing and reports changed false.
func (db *Store) VotePrompt(ctx context.Context, promptID, personID int64) (p ledger.Prompt, changed bool, err error) {
	err = db.inTx(ctx, func(tx *Tx) error {
		if err := personExists(ctx, tx, personID); err != nil {
			return err
		}
		author, err := visiblePrompt(ctx, tx, promptID)
		if err != nil {
			return err
		}
		if author == personID {
			return ledger.Errorf(ledger.Forbidden, "You shared this prompt, so your vote is already implied. Votes from colleagues who try it are what help others find it.")
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO prompt_votes(prompt_id, person_id, created_at) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, promptID, personID, ms(db.now()))
		if err != nil {
			return fmt.Errorf("vote for prompt %d: %w", promptID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		changed = true
		if _, err := tx.ExecContext(ctx, `UPDATE prompts SET votes = votes + 1 WHERE id = ?`, promptID); err != nil {
			return fmt.Errorf("count vote for prompt %d: %w", promptID, err)
		}
		return nil
	})
	if err != nil {
		return ledger.Prompt{}, false, err
	}
	p, err = db.Prompt(ctx, promptID)
	return p, changed, err
}

// UsePrompt counts a use of a prompt by a person; every use counts.
func (db *Store) UsePrompt(ctx context.Context, promptID, personID int64) (ledger.Prompt, error) {
	err := db.inTx(ctx, func(tx *Tx) error {
		if err := personExists(ctx, tx, personID); err != nil {
			return err
		}
		if _, err := visiblePrompt(ctx, tx, promptID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO prompt_uses(prompt_id, person_id, used_at) VALUES (?, ?, ?)`,
			promptID, personID, ms(db.now())); err != nil {
			return fmt.Errorf("record use of prompt %d: %w", promptID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE prompts SET uses = uses + 1 WHERE id = ?`, promptID); err != nil {
			return fmt.Errorf("count use of prompt %d: %w", promptID, err)
		}
		return nil
	})
	if err != nil {
		return ledger.Prompt{}, err
	}
	return db.Prompt(ctx, promptID)
}

// MarkPromptShown records that a prompt was offered to a person as a tip; the first
// showing stands.
func (db *Store) MarkPromptShown(ctx context.Context, personID, promptID int64) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if err := personExists(ctx, tx, personID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM prompts WHERE id = ?`, promptID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ledger.Errorf(ledger.NotFound, "prompt %d is not in the library", promptID)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO prompt_shown(person_id, prompt_id, shown_at) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, personID, promptID, ms(db.now())); err != nil {
			return fmt.Errorf("mark prompt %d shown: %w", promptID, err)
		}
		return nil
	})
}

// TipCandidates lists the prompts that could still be offered to a person as a tip: not
// hidden, not their own, never shown to them and never used by them.
func (db *Store) TipCandidates(ctx context.Context, personID int64) ([]ledger.Prompt, error) {
	ps, err := db.promptsWhere(ctx, `p.hidden = 0 AND (p.author_id IS NULL OR p.author_id <> ?)
		AND NOT EXISTS (SELECT 1 FROM prompt_shown s WHERE s.person_id = ? AND s.prompt_id = p.id)
		AND NOT EXISTS (SELECT 1 FROM prompt_uses u WHERE u.person_id = ? AND u.prompt_id = p.id)
		ORDER BY p.id`, personID, personID, personID)
	if err != nil {
		return nil, fmt.Errorf("tip candidates for person %d: %w", personID, err)
	}
	return ps, nil
}

// HidePrompt takes a prompt out of search and tips (hidden true) or puts it back; the
// change is audited. changed is false when it already was so.
func (db *Store) HidePrompt(ctx context.Context, id int64, hidden bool, actor string) (ledger.Prompt, bool, error) {
	action := map[bool]string{true: "prompt hide", false: "prompt show"}[hidden]
	return db.setPromptFlag(ctx, id, "hidden", hidden, actor, action)
}

// FeaturePrompt puts a prompt first in search and tips (featured true), or takes it back.
func (db *Store) FeaturePrompt(ctx context.Context, id int64, featured bool, actor string) (ledger.Prompt, bool, error) {
	action := map[bool]string{true: "prompt feature", false: "prompt unfeature"}[featured]
	return db.setPromptFlag(ctx, id, "featured", featured, actor, action)
}

// setPromptFlag sets column, which is one of the two constants its callers pass.
func (db *Store) setPromptFlag(ctx context.Context, id int64, column string, value bool, actor, action string) (ledger.Prompt, bool, error) {
	var changed bool
	err := db.inTx(ctx, func(tx *Tx) error {
		var title string
		if err := tx.QueryRowContext(ctx, `SELECT title FROM prompts WHERE id = ?`, id).Scan(&title); err != nil {
			return notFound(err, "prompt %d is not in the library", id)
		}
		now := db.now()
		res, err := tx.ExecContext(ctx, `UPDATE prompts SET `+column+` = ?, updated_at = ? WHERE id = ? AND `+column+` <> ?`,
			value, ms(now), id, value)
		if err != nil {
			return fmt.Errorf("%s %d: %w", action, id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		changed = true
		return auditTx(ctx, tx, now, actor, action, fmt.Sprintf("prompt %d", id), title)
	})
	if err != nil {
		return ledger.Prompt{}, false, err
	}
	p, err := db.Prompt(ctx, id)
	return p, changed, err
}

// CompleteLesson records a completed lesson and grants its bonus, both in one transaction:
// the progress row's primary key makes a repeat (or a concurrent click) a no-op, and the
// grant's idempotency key guarantees one grant even if the row were lost.
func (db *Store) CompleteLesson(ctx context.Context, in ledger.LessonCompletion) (ledger.LessonResult, error) {
	if in.LessonID == "" {
		return ledger.LessonResult{}, ledger.Errorf(ledger.Invalid, "no lesson given")
	}
	if in.Bonus < 0 {
		return ledger.LessonResult{}, ledger.Errorf(ledger.Invalid, "a lesson bonus cannot be negative")
	}
	var out ledger.LessonResult
	err := db.inTx(ctx, func(tx *Tx) error {
		if err := personExists(ctx, tx, in.PersonID); err != nil {
			return err
		}
		now := db.now()
		res, err := tx.ExecContext(ctx, `INSERT INTO lesson_progress(person_id, lesson_id, reflection, completed_at)
			VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, in.PersonID, in.LessonID, in.Reflection, ms(now))
		if err != nil {
			return fmt.Errorf("record lesson %s: %w", in.LessonID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var at int64
			if err := tx.QueryRowContext(ctx, `SELECT completed_at FROM lesson_progress WHERE person_id = ? AND lesson_id = ?`,
				in.PersonID, in.LessonID).Scan(&at); err != nil {
				return fmt.Errorf("read lesson %s: %w", in.LessonID, err)
			}
			out.CompletedAt = fromMs(at)
			return nil
		}
		out.First, out.CompletedAt = true, now
		if in.Bonus == 0 {
			return nil
		}
		out.Grant, err = db.grantTx(ctx, tx, ledger.GrantInput{Key: ledger.LessonKey(in.LessonID, in.PersonID), PersonID: in.PersonID,
			Kind: ledger.GrantLesson, Amount: in.Bonus, ExpiresAt: in.ExpiresAt, Reason: in.Reason, Actor: "fluency path"})
		if err != nil {
			return fmt.Errorf("lesson %s bonus: %w", in.LessonID, err)
		}
		return nil
	})
	if err != nil {
		return ledger.LessonResult{}, err
	}
	return out, nil
}

// LessonProgress returns when a person completed each lesson they completed, by lesson id.
func (db *Store) LessonProgress(ctx context.Context, personID int64) (map[string]time.Time, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT lesson_id, completed_at FROM lesson_progress WHERE person_id = ?`, personID)
	if err != nil {
		return nil, fmt.Errorf("lesson progress of person %d: %w", personID, err)
	}
	defer rows.Close()
	done := map[string]time.Time{}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, err
		}
		done[id] = fromMs(at)
	}
	return done, rows.Err()
}

// matchExpr quotes each term as an FTS phrase, joined by op ("" is FTS's implicit AND,
// "OR" the alternative). The last term matches as a prefix, so a half-typed word finds.
func matchExpr(terms []string, op string) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		star := ""
		if i == len(terms)-1 {
			star = "*"
		}
		parts[i] = `"` + t + star + `"`
	}
	sep := " "
	if op != "" {
		sep = " " + op + " "
	}
	return strings.Join(parts, sep)
}

// columnWeights scores a hit in the title highest, then the tags, the workflow and the
// body: the order of the columns in prompts_fts.
var columnWeights = []float64{3, 1, 2, 1.5}

// bm25 scores one row from its matchinfo(prompts_fts, 'pcnalx') blob: the Okapi BM25 sum
// over phrases and columns, with column weights and a positive idf.
func bm25(info []byte, weights []float64) (float64, error) {
	if len(info)%4 != 0 || len(info) < 12 {
		return 0, fmt.Errorf("matchinfo: %d bytes", len(info))
	}
	u := make([]int64, len(info)/4)
	for i := range u {
		u[i] = int64(binary.NativeEndian.Uint32(info[4*i:]))
	}
	p, c, n := u[0], u[1], u[2]
	if p > 1024 || c > 64 || int64(len(u)) != 3+2*c+3*p*c {
		return 0, fmt.Errorf("matchinfo: %d values for %d phrases and %d columns", len(u), p, c)
	}
	avg, lens, x := u[3:3+c], u[3+c:3+2*c], u[3+2*c:]
	const k1, b = 1.2, 0.75
	var score float64
	for i := range p {
		for j := range c {
			hits, docs := float64(x[3*(i*c+j)]), float64(x[3*(i*c+j)+2])
			if hits == 0 {
				continue
			}
			w := 1.0
			if j < int64(len(weights)) {
				w = weights[j]
			}
			idf := math.Log(1 + (float64(n)-docs+0.5)/(docs+0.5))
			norm := 1.0
			if avg[j] > 0 {
				norm = 1 - b + b*float64(lens[j])/float64(avg[j])
			}
			score += w * idf * hits * (k1 + 1) / (hits + k1*norm)
		}
	}
	return score, nil
}

// relevanceBand rounds a BM25 score so that prompts about equally relevant (they differ
// only by a few words of length) are ordered by votes, not by noise.
func relevanceBand(score float64) float64 { return math.Round(score * 10) }

// tsRankBand rounds PostgreSQL's ts_rank (a float4, about 0.06 for one title hit) to four
// decimals. ts_rank does not weigh a prompt's length, so prompts with the same hits rank
// exactly equal and no wider band is needed.
func tsRankBand(rank float64) float64 { return math.Round(rank * 1e4) }

// scored is a search hit with its relevance band (higher is more relevant).
type scored struct {
	ledger.Prompt
	score float64
}

// comparePrompts orders search results: featured first, then relevance, votes, the
// author's logged impact, and the oldest first so that pages are stable.
func comparePrompts(a, b scored) int {
	if a.Featured != b.Featured {
		if a.Featured {
			return -1
		}
		return 1
	}
	return cmp.Or(
		cmp.Compare(b.score, a.score),
		cmp.Compare(b.Votes, a.Votes),
		cmp.Compare(b.AuthorImpacts, a.AuthorImpacts),
		cmp.Compare(a.ID, b.ID),
	)
}

// SearchPrompts finds visible prompts for a query, ranked by relevance, then votes, then
// the author's impact, featured first; it returns limit results from offset. Any text is
// a valid query: see SearchTerms. Without words, it lists the library by votes. Every
// word must match (the last as a prefix); when no prompt has them all, prompts with any
// of them are returned.
//
// Relevance weighs a hit in the title 3, the tags 2, the workflow 1.5 and the body 1 on
// both engines, each with its own full-text index: SQLite scores BM25 from FTS4's
// matchinfo (a longer prompt with the same hits ranks a little lower, within a band),
// PostgreSQL ts_rank over the prompts_search index (hits only, length aside). The order
// of the rest (featured, votes, author impact, oldest first) is the same.
func (db *Store) SearchPrompts(ctx context.Context, query string, offset, limit int) (ledger.PromptPage, error) {
	offset, limit = max(0, offset), max(0, limit)
	terms := ledger.SearchTerms(query)
	if len(terms) == 0 {
		return db.topPrompts(ctx, offset, limit)
	}
	match := db.matchPrompts
	if db.d.Name() == "postgres" {
		match = db.matchPromptsTS
	}
	hits, err := match(ctx, terms, false)
	if err == nil && len(hits) == 0 && len(terms) > 1 {
		hits, err = match(ctx, terms, true)
	}
	if err != nil {
		return ledger.PromptPage{}, fmt.Errorf("search prompts: %w", err)
	}
	slices.SortFunc(hits, comparePrompts)
	page := ledger.PromptPage{Total: len(hits)}
	for _, h := range hits[min(offset, len(hits)):min(offset+limit, len(hits))] {
		page.Prompts = append(page.Prompts, h.Prompt)
	}
	return page, nil
}

// matchPrompts is SQLite's search: the FTS4 table prompts_fts, scored in Go (bm25) from
// matchinfo. any matches prompts with any of the terms instead of all.
func (db *Store) matchPrompts(ctx context.Context, terms []string, any bool) ([]scored, error) {
	op := ""
	if any {
		op = "OR"
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+promptColumns+`, matchinfo(prompts_fts, 'pcnalx')
		FROM prompts_fts JOIN prompts p ON p.id = prompts_fts.docid LEFT JOIN people a ON a.id = p.author_id
		WHERE prompts_fts MATCH ? AND p.hidden = 0`, matchExpr(terms, op))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []scored
	for rows.Next() {
		var info []byte
		p, err := scanPrompt(rows, &info)
		if err != nil {
			return nil, err
		}
		score, err := bm25(info, columnWeights)
		if err != nil {
			return nil, fmt.Errorf("prompt %d: %w", p.ID, err)
		}
		out = append(out, scored{Prompt: p, score: relevanceBand(score)})
	}
	return out, rows.Err()
}

// matchPromptsTS is PostgreSQL's search: the GIN index prompts_fts over
// prompts_search(title, body, tags, workflow) (ledger/postgres/migrations), ranked by
// ts_rank with the weights of columnWeights over 3 (D body, C workflow, B tags, A title).
// The query is folded by prompts_fold, as prompts_search folds the prompt (case and
// diacritics, as SQLite's unicode61 tokenizer). any matches prompts with any of the
// terms instead of all.
func (db *Store) matchPromptsTS(ctx context.Context, terms []string, any bool) ([]scored, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+promptColumns+`,
			ts_rank('{0.333, 0.5, 0.667, 1}', prompts_search(p.title, p.body, p.tags, p.workflow), q.q)
		FROM prompts p LEFT JOIN people a ON a.id = p.author_id, (SELECT to_tsquery('simple', prompts_fold(?)) AS q) q
		WHERE prompts_search(p.title, p.body, p.tags, p.workflow) @@ q.q AND p.hidden = 0`, tsQuery(terms, any))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []scored
	for rows.Next() {
		var rank float64
		p, err := scanPrompt(rows, &rank)
		if err != nil {
			return nil, err
		}
		out = append(out, scored{Prompt: p, score: tsRankBand(rank)})
	}
	return out, rows.Err()
}

// tsQuery writes terms as the text of a tsquery for to_tsquery: each term quoted (so the
// query's operators are words), joined by & (all) or | (any); the last term matches as
// a prefix, so a half-typed word finds. to_tsquery reads each quoted term with the
// 'simple' configuration, after prompts_fold, as prompts_search reads the prompt.
func tsQuery(terms []string, any bool) string {
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = "'" + strings.NewReplacer(`\`, `\\`, "'", "''").Replace(t) + "'"
		if i == len(terms)-1 {
			parts[i] += ":*"
		}
	}
	op := " & "
	if any {
		op = " | "
	}
	return strings.Join(parts, op)
}

func (db *Store) topPrompts(ctx context.Context, offset, limit int) (ledger.PromptPage, error) {
	var page ledger.PromptPage
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM prompts WHERE hidden = 0`).Scan(&page.Total); err != nil {
		return ledger.PromptPage{}, fmt.Errorf("count prompts: %w", err)
	}
	ps, err := db.promptsWhere(ctx, `p.hidden = 0 ORDER BY p.featured DESC, p.votes DESC, author_impacts DESC, p.id LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return ledger.PromptPage{}, fmt.Errorf("list prompts: %w", err)
	}
	page.Prompts = ps
	return page, nil
}
