package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// PeopleImport applies a directory file of any size: Stage writes it to a staging table a
// chunk at a time (each chunk its own short transaction, in the writer's bulk lane), and
// Apply checks and applies all of it in one transaction with set-based statements, so
// nothing changes unless the whole file is good (as ImportPeople), memory stays bounded
// and the writer is held for seconds, not minutes.
//
// One import at a time per database, across processes (an admin's CLI beside serve, or
// replicas of one PostgreSQL ledger): the import holds the lease row people_import_lease
// from BeginPeopleImport to Apply or Discard, and a second import's Begin waits for it.
type PeopleImport struct {
	db     *Store
	holder string // the lease's token
	staged int    // rows staged, which Apply finds again
}

// importPoll is how often a waiting BeginPeopleImport looks at the lease again.
const importPoll = 200 * time.Millisecond

// BeginPeopleImport takes the import lease, waiting while another import holds it (until
// ctx ends), and empties the staging table (what a killed import left there).
func (db *Store) BeginPeopleImport(ctx context.Context) (ledger.PeopleImport, error) {
	token := make([]byte, 16)
	if _, err := rand.Read(token); err != nil {
		return nil, fmt.Errorf("begin people import: %w", err)
	}
	pi := &PeopleImport{db: db, holder: hex.EncodeToString(token)}
	held := false // another import was seen holding the lease
	fail := func(err error) (ledger.PeopleImport, error) {
		if held && ctx.Err() != nil {
			return nil, fmt.Errorf("begin people import: another directory import is running: %w", ctx.Err())
		}
		return nil, fmt.Errorf("begin people import: %w", err)
	}
	for {
		// Waiting reads the lease; only a lease that looks free takes a write transaction.
		var touched int64
		err := db.read.QueryRowContext(ctx, `SELECT touched_at FROM people_import_lease WHERE id = 1`).Scan(&touched)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fail(err)
		}
		free := err != nil || touched < time.Now().UnixMilli()-ledger.ImportIdleLimit.Milliseconds()
		var taken bool
		take := func(tx *Tx) error {
			now := time.Now().UnixMilli()
			var touched int64
			err := tx.QueryRowContext(ctx, `SELECT touched_at FROM people_import_lease WHERE id = 1`).Scan(&touched)
			if err == nil && touched >= now-ledger.ImportIdleLimit.Milliseconds() {
				return nil // held by a live import
			}
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM people_staging`); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO people_import_lease(id, holder, started_at, touched_at) VALUES (1, ?, ?, ?)
				ON CONFLICT(id) DO UPDATE SET holder = excluded.holder, started_at = excluded.started_at, touched_at = excluded.touched_at`,
				pi.holder, now, now); err != nil {
				return err
			}
			taken = true
			return nil
		}
		if free {
			if err := db.inBulkTx(ctx, take); err != nil {
				return fail(err)
			}
		}
		if taken {
			return pi, nil
		}
		held = true
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(importPoll):
		}
	}
}

// touch renews the import's lease in tx; a lease taken over (the import was idle past
// ledger.ImportIdleLimit) is a Conflict error.
func (pi *PeopleImport) touch(ctx context.Context, tx *Tx) error {
	res, err := tx.ExecContext(ctx, `UPDATE people_import_lease SET touched_at = ? WHERE id = 1 AND holder = ?`, time.Now().UnixMilli(), pi.holder)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return ledger.Errorf(ledger.Conflict, "this directory import was idle for over %.0f minutes and another import took its place; run the import again",
			ledger.ImportIdleLimit.Minutes())
	}
	return nil
}

// Stage adds parsed records (directory.StreamCSV) to the import.
func (pi *PeopleImport) Stage(ctx context.Context, recs []ledger.PersonRecord) error {
	rows := make([][]any, len(recs))
	for i, r := range recs {
		mgrKey := ""
		if r.ManagerEmail != "" {
			mgrKey = ledger.NormalizeEmail(r.ManagerEmail)
		}
		rows[i] = []any{r.Line, strings.TrimSpace(r.Email), ledger.NormalizeEmail(r.Email), r.Name, r.Team, r.Role,
			r.ManagerEmail, mgrKey, nullStr(r.SlackUserID), nullStr(r.TeamsUserID)}
	}
	err := pi.db.inBulkTx(ctx, func(tx *Tx) error {
		if err := pi.touch(ctx, tx); err != nil {
			return err
		}
		return insertRows(ctx, tx, `INSERT INTO people_staging(line, email, email_key, name, team, role, manager_email, manager_key,
			slack_user_id, teams_user_id)`, 10, rows)
	})
	if err != nil {
		return fmt.Errorf("stage people: %w", err)
	}
	pi.staged += len(recs)
	return nil
}

// Discard empties the staging table and gives the lease back, after a failed import. An
// import whose lease was taken over leaves both to the import that holds it now.
func (pi *PeopleImport) Discard(ctx context.Context) error {
	return pi.db.inBulkTx(ctx, func(tx *Tx) error {
		if pi.touch(ctx, tx) != nil {
			return nil
		}
		return pi.release(ctx, tx)
	})
}

// release empties the staging table and deletes the lease, in the transaction that holds it.
func (pi *PeopleImport) release(ctx context.Context, tx *Tx) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM people_staging`); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM people_import_lease WHERE id = 1 AND holder = ?`, pi.holder)
	return err
}

// stagingProblems are the checks of ImportPeople, as queries over the staging table, with
// the same messages; each lists at most maxProblems.
var stagingProblems = []struct {
	query  string
	format func(args []any) string
}{
	{`SELECT s.line, s.email, f.first FROM people_staging s
		JOIN (SELECT email_key, min(line) AS first FROM people_staging GROUP BY email_key HAVING count(*) > 1) f ON f.email_key = s.email_key
		WHERE s.line > f.first ORDER BY s.line`,
		func(a []any) string { return fmt.Sprintf("line %d: %s already appears on line %d", a[0], a[1], a[2]) }},
	{`SELECT line, email, '' FROM people_staging WHERE manager_key = email_key ORDER BY line`,
		func(a []any) string { return fmt.Sprintf("line %d: %s cannot be their own manager", a[0], a[1]) }},
	{`SELECT s.line, s.slack_user_id, '' FROM people_staging s WHERE s.slack_user_id IS NOT NULL AND (
			EXISTS (SELECT 1 FROM people p WHERE p.slack_user_id = s.slack_user_id AND (p.email_key IS NULL OR p.email_key <> s.email_key))
			OR EXISTS (SELECT 1 FROM people_staging t WHERE t.slack_user_id = s.slack_user_id AND t.email_key <> s.email_key AND t.line < s.line))
		ORDER BY s.line`,
		func(a []any) string {
			return fmt.Sprintf("line %d: Slack user id %s already belongs to someone else", a[0], a[1])
		}},
	{`SELECT s.line, s.teams_user_id, '' FROM people_staging s WHERE s.teams_user_id IS NOT NULL AND (
			EXISTS (SELECT 1 FROM people p WHERE p.teams_user_id = s.teams_user_id AND (p.email_key IS NULL OR p.email_key <> s.email_key))
			OR EXISTS (SELECT 1 FROM people_staging t WHERE t.teams_user_id = s.teams_user_id AND t.email_key <> s.email_key AND t.line < s.line))
		ORDER BY s.line`,
		func(a []any) string {
			return fmt.Sprintf("line %d: Teams user id %s already belongs to someone else", a[0], a[1])
		}},
	{`SELECT s.line, s.manager_email, '' FROM people_staging s WHERE s.manager_key <> ''
			AND NOT EXISTS (SELECT 1 FROM people_staging t WHERE t.email_key = s.manager_key)
			AND NOT EXISTS (SELECT 1 FROM people p WHERE p.email_key = s.manager_key)
		ORDER BY s.line`,
		func(a []any) string {
			return fmt.Sprintf("line %d: manager %s is not in the directory; add them to the file", a[0], a[1])
		}},
}

const maxProblems = 1000

// Apply checks the staged file and applies it in one transaction: people upserted by
// their email key (the first spelling stays), chat ids kept when the file leaves them
// empty, managers set, the manager graph checked for cycles. Any problem leaves the
// directory as it was and comes back as one ledger Invalid error listing every line (at
// most 1,000). The staging table is emptied and the lease given back either way.
func (pi *PeopleImport) Apply(ctx context.Context) (ledger.ImportResult, error) {
	db := pi.db
	var res ledger.ImportResult
	now := ms(db.now())
	// The upsert of a whole directory changes every page of people: an engine that keeps
	// such a write's undo in memory (SQLite's writer, for usage batches) keeps it on disk
	// for this one.
	if lw, ok := db.d.(LargeWriter); ok {
		done, err := lw.LargeWrite(ctx)
		if err != nil {
			return res, fmt.Errorf("apply people import: %w", err)
		}
		defer done()
	}
	err := db.inBulkTx(ctx, func(tx *Tx) error {
		if err := pi.touch(ctx, tx); err != nil {
			return err
		}
		// Rows lost since they were staged (PostgreSQL empties its unlogged staging table
		// in a crash or a failover) must not make a partial file look whole.
		var staged int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM people_staging`).Scan(&staged); err != nil {
			return fmt.Errorf("count the file: %w", err)
		}
		if staged != pi.staged {
			return ledger.Errorf(ledger.Conflict, "%d of the file's %d rows were lost while it was being imported (did the database restart?); run the import again",
				pi.staged-staged, pi.staged)
		}
		var problems []string
		for _, c := range stagingProblems {
			rows, err := tx.QueryContext(ctx, c.query+fmt.Sprintf(" LIMIT %d", maxProblems))
			if err != nil {
				return fmt.Errorf("check the file: %w", err)
			}
			for rows.Next() {
				var line int64
				var a, b any
				if err := rows.Scan(&line, &a, &b); err != nil {
					rows.Close()
					return err
				}
				problems = append(problems, c.format([]any{line, a, b}))
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if len(problems) > 0 && c.query == stagingProblems[1].query {
				break // duplicate lines and self-management are reported before the rest, as ImportPeople
			}
		}
		if len(problems) > 0 {
			return ledger.Errorf(ledger.Invalid, "%s", strings.Join(problems, "\n"))
		}
		var total, created int
		if err := tx.QueryRowContext(ctx, `SELECT count(*), COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM people p WHERE p.email_key = s.email_key) THEN 0 ELSE 1 END), 0)
			FROM people_staging s`).Scan(&total, &created); err != nil {
			return fmt.Errorf("count the file: %w", err)
		}
		res.Created, res.Updated = created, total-created
		if _, err := tx.ExecContext(ctx, `INSERT INTO people(email, email_key, name, team, role, slack_user_id, teams_user_id, joined_at, updated_at)
			SELECT email, email_key, name, team, role, slack_user_id, teams_user_id, ?, ? FROM people_staging WHERE true ORDER BY line
			ON CONFLICT(email_key) WHERE email_key IS NOT NULL DO UPDATE SET name = excluded.name, team = excluded.team, role = excluded.role,
				slack_user_id = COALESCE(excluded.slack_user_id, people.slack_user_id),
				teams_user_id = COALESCE(excluded.teams_user_id, people.teams_user_id), updated_at = excluded.updated_at`, now, now); err != nil {
			return fmt.Errorf("apply the file: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE people SET manager_id = (SELECT m.id FROM people m WHERE m.email_key = s.manager_key)
			FROM people_staging s WHERE people.email_key = s.email_key`); err != nil {
			return fmt.Errorf("set managers: %w", err)
		}
		lineOf := func(key string) (int, bool) {
			var line int
			err := tx.QueryRowContext(ctx, `SELECT min(line) FROM people_staging WHERE email_key = ?`, key).Scan(&line)
			return line, err == nil && line > 0
		}
		if cycles := managerCycles(ctx, tx, lineOf); len(cycles) > 0 {
			return ledger.Errorf(ledger.Invalid, "%s", strings.Join(cycles, "\n"))
		}
		return pi.release(ctx, tx)
	})
	if err != nil {
		if derr := pi.Discard(context.WithoutCancel(ctx)); derr != nil {
			return ledger.ImportResult{}, fmt.Errorf("%w (and emptying the staging table: %v)", err, derr)
		}
		return ledger.ImportResult{}, err
	}
	return res, nil
}
