package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// ErasedText replaces what a forgotten person wrote (impacts, use cases, reflections).
const ErasedText = "(erased on request)"

// PersonData is everything tokenpay stores about one person, as `tokenpay people export`
// prints it: the directory entry, the ledger seen from their side, and what they wrote.
type PersonData struct {
	ExportedAt time.Time        `json:"exported_at"`
	Person     PersonRecordJSON `json:"person"`
	Grants     []GrantJSON      `json:"grants"`
	Usage      []UsageJSON      `json:"usage"`
	Requests   []RequestJSON    `json:"requests"`
	Impacts    []ImpactJSON     `json:"impacts"`
	Prompts    []PromptJSON     `json:"prompts"`
	Lessons    []LessonJSON     `json:"lessons"`
}

// PersonRecordJSON is the directory entry of a person.
type PersonRecordJSON struct {
	ID                int64      `json:"id"`
	Email             string     `json:"email"`
	Name              string     `json:"name"`
	Team              string     `json:"team"`
	Role              string     `json:"role"`
	ManagerEmail      string     `json:"manager_email"`
	SlackUserID       string     `json:"slack_user_id"`
	TeamsUserID       string     `json:"teams_user_id"`
	TimeZone          string     `json:"time_zone"`
	NudgesOff         bool       `json:"nudges_off"`
	DigestsOff        bool       `json:"digests_off"`
	PreferredPlatform string     `json:"preferred_platform"`
	JoinedAt          time.Time  `json:"joined_at"`
	ForgottenAt       *time.Time `json:"forgotten_at,omitempty"`
}

// GrantJSON is one grant of credits.
type GrantJSON struct {
	ID          int64     `json:"id"`
	Kind        string    `json:"kind"`
	Amount      int64     `json:"amount"`
	Remaining   int64     `json:"remaining"`
	EffectiveAt time.Time `json:"effective_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	Reason      string    `json:"reason"`
	Closed      bool      `json:"closed"`
}

// UsageJSON is one usage event.
type UsageJSON struct {
	EventID      string    `json:"event_id"`
	Model        string    `json:"model"`
	InputTokens  int64     `json:"input_tokens"`
	OutputTokens int64     `json:"output_tokens"`
	Credits      int64     `json:"credits"`
	Overage      int64     `json:"overage"`
	OccurredAt   time.Time `json:"occurred_at"`
	Source       string    `json:"source"`
	Reversed     bool      `json:"reversed"`
}

// RequestJSON is one unlock request the person filed.
type RequestJSON struct {
	ID        int64      `json:"id"`
	Amount    int64      `json:"amount"`
	UseCase   string     `json:"use_case"`
	Status    string     `json:"status"`
	Note      string     `json:"note"`
	CreatedAt time.Time  `json:"created_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
}

// ImpactJSON is one outcome the person logged.
type ImpactJSON struct {
	ID          int64      `json:"id"`
	Text        string     `json:"text"`
	Minutes     int64      `json:"minutes"`
	Link        string     `json:"link"`
	CreatedAt   time.Time  `json:"created_at"`
	ValidatedAt *time.Time `json:"validated_at,omitempty"`
}

// PromptJSON is one prompt the person shared.
type PromptJSON struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// LessonJSON is one lesson the person completed.
type LessonJSON struct {
	LessonID    string    `json:"lesson_id"`
	Reflection  string    `json:"reflection"`
	CompletedAt time.Time `json:"completed_at"`
}

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid || v.Int64 == 0 {
		return nil
	}
	t := fromMs(v.Int64)
	return &t
}

// ExportPerson gathers everything stored about the person with this email, read from one
// snapshot. The export is an admin action and is written to the audit log by actor.
func (db *DB) ExportPerson(ctx context.Context, email, actor string) (PersonData, error) {
	d := PersonData{ExportedAt: db.now()}
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return d, fmt.Errorf("export %s: %w", email, err)
	}
	defer tx.Rollback()
	p := &d.Person
	var joined int64
	var forgotten sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT p.id, p.email, p.name, p.team, p.role, COALESCE(m.email, ''), COALESCE(p.slack_user_id, ''),
		COALESCE(p.teams_user_id, ''), p.time_zone, p.nudges_off, p.digests_off, p.preferred_platform, p.joined_at, p.forgotten_at
		FROM people p LEFT JOIN people m ON m.id = p.manager_id WHERE p.email_key = ?`, ledger.NormalizeEmail(email)).
		Scan(&p.ID, &p.Email, &p.Name, &p.Team, &p.Role, &p.ManagerEmail, &p.SlackUserID, &p.TeamsUserID, &p.TimeZone,
			&p.NudgesOff, &p.DigestsOff, &p.PreferredPlatform, &joined, &forgotten)
	if err != nil {
		return d, notFound(err, "%s is not in the directory", email)
	}
	p.JoinedAt, p.ForgottenAt = fromMs(joined), optTime(forgotten)

	lists := []struct {
		what  string
		query string
		scan  func(s scanner) error
	}{
		{"grants", `SELECT g.id, g.kind, g.amount, r.remaining, g.effective_at, g.expires_at, g.reason, g.closed_tx_id IS NOT NULL
			FROM ` + grantTables + ` WHERE g.person_id = ? ORDER BY g.id`,
			func(s scanner) error {
				var g GrantJSON
				var eff, exp int64
				err := s.Scan(&g.ID, &g.Kind, &g.Amount, &g.Remaining, &eff, &exp, &g.Reason, &g.Closed)
				g.EffectiveAt, g.ExpiresAt = fromMs(eff), fromMs(exp)
				d.Grants = append(d.Grants, g)
				return err
			}},
		// Overage as it stands, settlements and late charges included (usage_adjustments).
		{"usage", `SELECT event_id, model, input_tokens, output_tokens, credits,
			overage + COALESCE((SELECT SUM(a.overage) FROM usage_adjustments a WHERE a.usage_tx_id = u.tx_id), 0),
			occurred_at, source, reversed FROM usage_events u
			WHERE person_id = ? ORDER BY occurred_at, tx_id`,
			func(s scanner) error {
				var u UsageJSON
				var at int64
				err := s.Scan(&u.EventID, &u.Model, &u.InputTokens, &u.OutputTokens, &u.Credits, &u.Overage, &at, &u.Source, &u.Reversed)
				u.OccurredAt = fromMs(at)
				d.Usage = append(d.Usage, u)
				return err
			}},
		{"requests", `SELECT id, amount, use_case, status, note, created_at, decided_at FROM requests WHERE requester_id = ? ORDER BY id`,
			func(s scanner) error {
				var r RequestJSON
				var created int64
				var decided sql.NullInt64
				err := s.Scan(&r.ID, &r.Amount, &r.UseCase, &r.Status, &r.Note, &created, &decided)
				r.CreatedAt, r.DecidedAt = fromMs(created), optTime(decided)
				d.Requests = append(d.Requests, r)
				return err
			}},
		{"impacts", `SELECT id, text, minutes, link, created_at, validated_at FROM impacts WHERE person_id = ? ORDER BY id`,
			func(s scanner) error {
				var im ImpactJSON
				var created int64
				var validated sql.NullInt64
				err := s.Scan(&im.ID, &im.Text, &im.Minutes, &im.Link, &created, &validated)
				im.CreatedAt, im.ValidatedAt = fromMs(created), optTime(validated)
				d.Impacts = append(d.Impacts, im)
				return err
			}},
		{"prompts", `SELECT id, title, body, created_at FROM prompts WHERE author_id = ? ORDER BY id`,
			func(s scanner) error {
				var pr PromptJSON
				var created int64
				err := s.Scan(&pr.ID, &pr.Title, &pr.Body, &created)
				pr.CreatedAt = fromMs(created)
				d.Prompts = append(d.Prompts, pr)
				return err
			}},
		{"lessons", `SELECT lesson_id, reflection, completed_at FROM lesson_progress WHERE person_id = ? ORDER BY completed_at, lesson_id`,
			func(s scanner) error {
				var l LessonJSON
				var at int64
				err := s.Scan(&l.LessonID, &l.Reflection, &at)
				l.CompletedAt = fromMs(at)
				d.Lessons = append(d.Lessons, l)
				return err
			}},
	}
	for _, l := range lists {
		if err := scanAll(ctx, tx, l.query, p.ID, l.scan); err != nil {
			return d, fmt.Errorf("export %s: %s: %w", email, l.what, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return d, fmt.Errorf("export %s: %w", email, err)
	}
	// The person id in the detail keeps the entry meaningful after a later forget, which
	// replaces the email in the subject.
	if err := db.Audit(ctx, actor, "people.export", p.Email, fmt.Sprintf("person %d", p.ID)); err != nil {
		return d, err
	}
	return d, nil
}

func scanAll(ctx context.Context, tx *sql.Tx, query string, arg any, scan func(s scanner) error) error {
	rows, err := tx.QueryContext(ctx, query, arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ForgetResult says what Forget erased.
type ForgetResult struct {
	PersonID  int64
	Pseudonym string // the email the person's row now carries
	Impacts   int64
	Requests  int64
	Lessons   int64
	Prompts   int64 // shared prompts kept in the library, now anonymous
	Messages  int64 // queued chat messages withdrawn
	// WALCleared is false when another connection kept the write-ahead log busy, so old
	// copies of the erased text stay in it until the log is next reset.
	WALCleared bool
}

// Pseudonym is the email a forgotten person's row carries: unique, and in the .invalid
// top-level domain that can never be delivered to.
func Pseudonym(personID int64) string { return fmt.Sprintf("forgotten-%d@invalid", personID) }

// Forget erases a person's personal data in one transaction: name, email (replaced by
// Pseudonym), chat identities and time zone; the texts they wrote (impacts, use cases and
// deny notes of their requests, lesson reflections, the use case quoted in unlock grants);
// their stored Teams conversation and queued messages; their email in the audit log and in
// quarantined events. The ledger's amounts stay, under the pseudonym, so every total and
// `ledger verify` stay true. Prompts they shared stay in the library, credited to the
// pseudonym. The erasure is written to the audit log by actor.
//
// A manager with reports is refused: their reports' approvals would reach no one.
func (db *DB) Forget(ctx context.Context, email, actor string) (ForgetResult, error) {
	var res ForgetResult
	now := ms(db.now())
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		// Zero what the updates free inside pages, instead of leaving it readable in the file.
		if _, err := tx.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
			return fmt.Errorf("forget %s: %w", email, err)
		}
		defer tx.ExecContext(context.WithoutCancel(ctx), `PRAGMA secure_delete = OFF`)
		var stored, slackID, teamsID string
		var forgotten sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT id, email, COALESCE(slack_user_id, ''), COALESCE(teams_user_id, ''), forgotten_at
			FROM people WHERE email_key = ?`, ledger.NormalizeEmail(email)).Scan(&res.PersonID, &stored, &slackID, &teamsID, &forgotten)
		if err != nil {
			return notFound(err, "%s is not in the directory", email)
		}
		if forgotten.Valid {
			return ledger.Errorf(ledger.Invalid, "%s was already forgotten on %s", stored, fromMs(forgotten.Int64).Format("2 Jan 2006"))
		}
		var reports int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM people WHERE manager_id = ? AND forgotten_at IS NULL`, res.PersonID).Scan(&reports); err != nil {
			return err
		}
		if reports > 0 {
			return ledger.Errorf(ledger.Invalid, "%s manages %s; import the directory with their new manager first, then forget %s", stored,
				map[bool]string{true: "1 person", false: ledger.FormatCredits(int64(reports)) + " people"}[reports == 1], stored)
		}
		res.Pseudonym = Pseudonym(res.PersonID)
		id := res.PersonID
		steps := []struct {
			what  string
			query string
			args  []any
			count *int64
		}{
			{"person", `UPDATE people SET email = ?, email_key = ?, name = ?, slack_user_id = NULL, teams_user_id = NULL, time_zone = '', nudges_off = 1,
				digests_off = 1, preferred_platform = '', forgotten_at = ?, updated_at = ? WHERE id = ?`,
				[]any{res.Pseudonym, ledger.NormalizeEmail(res.Pseudonym), fmt.Sprintf("Forgotten person %d", id), now, now, id}, nil},
			{"impacts", `UPDATE impacts SET text = ?, link = '' WHERE person_id = ?`, []any{ErasedText, id}, &res.Impacts},
			{"requests", `UPDATE requests SET use_case = ?, note = '' WHERE requester_id = ?`, []any{ErasedText, id}, &res.Requests},
			// A pending request could only be decided on the strength of its erased text.
			{"pending requests", `UPDATE requests SET status = 'cancelled', decided_at = ? WHERE requester_id = ? AND status = 'pending'`, []any{now, id}, nil},
			// Unlock grants quote the use case in their reason; transactions.reason repeats it.
			{"unlock reasons", `UPDATE transactions SET reason = ? WHERE id IN (SELECT tx_id FROM grants WHERE person_id = ? AND kind = 'unlock')`,
				[]any{"unlock: " + ErasedText, id}, nil},
			{"unlock grants", `UPDATE grants SET reason = ? WHERE person_id = ? AND kind = 'unlock'`, []any{"unlock: " + ErasedText, id}, nil},
			{"lessons", `UPDATE lesson_progress SET reflection = ? WHERE person_id = ?`, []any{ErasedText, id}, &res.Lessons},
			// Signed-in browsers and unused sign-in links stop working with the person.
			{"web sessions", `DELETE FROM web_sessions WHERE person_id = ?`, []any{id}, nil},
			{"login links", `DELETE FROM login_links WHERE person_id = ?`, []any{id}, nil},
			{"teams conversation", `DELETE FROM teams_conversations WHERE aad_object_id = ? AND ? <> ''`, []any{teamsID, teamsID}, nil},
			{"outbox", `UPDATE outbox SET status = 'unreachable', last_error = 'person forgotten', owner = '' WHERE person_id = ? AND status IN ('pending', 'sending')`,
				[]any{id}, &res.Messages},
			{"outbox payloads", `UPDATE outbox SET payload = '{}' WHERE person_id = ?`, []any{id}, nil},
			{"audit subjects", `UPDATE audit_log SET subject = ? WHERE subject = ? COLLATE NOCASE`, []any{res.Pseudonym, stored}, nil},
			{"audit actors", `UPDATE audit_log SET actor = ? WHERE actor = ? COLLATE NOCASE`, []any{res.Pseudonym, stored}, nil},
			{"audit details", `UPDATE audit_log SET detail = replace(replace(detail, ?, ?), lower(?), ?) WHERE instr(lower(detail), lower(?)) > 0`,
				[]any{stored, res.Pseudonym, stored, res.Pseudonym, stored}, nil},
			// Usage that waited for this person names them; it is settled, never replayed.
			{"quarantine", `UPDATE quarantine SET payload = json_set(payload, '$.Email', '', '$.SlackUserID', '', '$.TeamsUserID', ''),
				reason = ?, resolved_at = COALESCE(resolved_at, ?)
				WHERE json_valid(payload) AND (json_extract(payload, '$.Email') = ? COLLATE NOCASE
					OR (? <> '' AND json_extract(payload, '$.SlackUserID') = ?) OR (? <> '' AND json_extract(payload, '$.TeamsUserID') = ?))`,
				[]any{"person forgotten", now, stored, slackID, slackID, teamsID, teamsID}, nil},
			// A connector's usage queued for them is dropped: forgotten people get nothing new.
			{"connector events", `DELETE FROM connector_pending WHERE json_valid(event) AND json_extract(event, '$.Email') = ? COLLATE NOCASE`,
				[]any{stored}, nil},
		}
		for _, s := range steps {
			r, err := tx.ExecContext(ctx, s.query, s.args...)
			if err != nil {
				return fmt.Errorf("forget %s: %s: %w", stored, s.what, err)
			}
			if s.count != nil {
				*s.count, _ = r.RowsAffected()
			}
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM prompts WHERE author_id = ?`, id).Scan(&res.Prompts); err != nil {
			return fmt.Errorf("forget %s: prompts: %w", stored, err)
		}
		return auditTx(ctx, tx, fromMs(now), actor, "people.forget", res.Pseudonym,
			"personal data erased; ledger amounts kept under the pseudonym")
	})
	if err != nil {
		return ForgetResult{}, err
	}
	// The write-ahead log still holds the pages as they were before; copy it back and empty it.
	var busy, logged, copied int
	if err := db.write.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &copied); err != nil {
		return res, fmt.Errorf("forget %s: erased, but clearing the write-ahead log failed: %w", email, err)
	}
	res.WALCleared = busy == 0
	return res, nil
}

// Compact rewrites the whole database file (VACUUM) and empties the write-ahead log. After
// Forget, it removes older copies of the erased text that earlier updates left in free
// space inside pages. Writers wait while it runs: minutes on a large ledger.
func (db *DB) Compact(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("compact %s: %w", db.Path, err)
	}
	var busy, logged, copied int
	if err := db.write.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &copied); err != nil {
		return fmt.Errorf("compact %s: checkpoint: %w", db.Path, err)
	}
	if busy != 0 {
		return fmt.Errorf("compact %s: the write-ahead log is in use by another connection; run it again when the service is quiet", db.Path)
	}
	return nil
}
