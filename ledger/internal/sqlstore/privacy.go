package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

func optTime(v sql.NullInt64) *time.Time {
	if !v.Valid || v.Int64 == 0 {
		return nil
	}
	t := fromMs(v.Int64)
	return &t
}

// ExportPerson gathers everything stored about the person with this email, read from one
// snapshot. The export is an admin action and is written to the audit log by actor.
func (db *Store) ExportPerson(ctx context.Context, email, actor string) (ledger.PersonData, error) {
	d := ledger.PersonData{ExportedAt: db.now()}
	// REPEATABLE READ: PostgreSQL's default takes a snapshot per statement; SQLite's read
	// transaction is one snapshot whatever the level.
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
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
	days, err := usageDays(ctx, tx, "u", math.MinInt64, math.MaxInt64)
	if err != nil {
		return d, fmt.Errorf("export %s: %w", email, err)
	}

	lists := []struct {
		what  string
		query string
		scan  func(s scanner) error
	}{
		{"grants", `SELECT g.id, g.kind, g.amount, r.remaining, g.effective_at, g.expires_at, g.reason, g.closed_tx_id IS NOT NULL
			FROM ` + grantTables + ` WHERE g.person_id = ? ORDER BY g.id`,
			func(s scanner) error {
				var g ledger.GrantJSON
				var eff, exp int64
				err := s.Scan(&g.ID, &g.Kind, &g.Amount, &g.Remaining, &eff, &exp, &g.Reason, &g.Closed)
				g.EffectiveAt, g.ExpiresAt = fromMs(eff), fromMs(exp)
				d.Grants = append(d.Grants, g)
				return err
			}},
		// Overage as it stands, settlements and late charges included (usage_adjustments).
		{"usage", `SELECT event_id, model, input_tokens, output_tokens, credits,
			overage + COALESCE((SELECT CAST(SUM(a.overage) AS BIGINT) FROM usage_adjustments a WHERE a.usage_tx_id = u.tx_id), 0),
			occurred_at, source, reversed, events FROM usage_events u
			WHERE ` + days + ` AND person_id = ? ORDER BY occurred_at, tx_id`,
			func(s scanner) error {
				var u ledger.UsageJSON
				var at int64
				err := s.Scan(&u.EventID, &u.Model, &u.InputTokens, &u.OutputTokens, &u.Credits, &u.Overage, &at, &u.Source, &u.Reversed, &u.Events)
				u.OccurredAt = fromMs(at)
				d.Usage = append(d.Usage, u)
				return err
			}},
		{"requests", `SELECT id, amount, use_case, status, note, created_at, decided_at FROM requests WHERE requester_id = ? ORDER BY id`,
			func(s scanner) error {
				var r ledger.RequestJSON
				var created int64
				var decided sql.NullInt64
				err := s.Scan(&r.ID, &r.Amount, &r.UseCase, &r.Status, &r.Note, &created, &decided)
				r.CreatedAt, r.DecidedAt = fromMs(created), optTime(decided)
				d.Requests = append(d.Requests, r)
				return err
			}},
		{"impacts", `SELECT id, text, minutes, link, created_at, validated_at FROM impacts WHERE person_id = ? ORDER BY id`,
			func(s scanner) error {
				var im ledger.ImpactJSON
				var created int64
				var validated sql.NullInt64
				err := s.Scan(&im.ID, &im.Text, &im.Minutes, &im.Link, &created, &validated)
				im.CreatedAt, im.ValidatedAt = fromMs(created), optTime(validated)
				d.Impacts = append(d.Impacts, im)
				return err
			}},
		{"prompts", `SELECT id, title, body, created_at FROM prompts WHERE author_id = ? ORDER BY id`,
			func(s scanner) error {
				var pr ledger.PromptJSON
				var created int64
				err := s.Scan(&pr.ID, &pr.Title, &pr.Body, &created)
				pr.CreatedAt = fromMs(created)
				d.Prompts = append(d.Prompts, pr)
				return err
			}},
		{"lessons", `SELECT lesson_id, reflection, completed_at FROM lesson_progress WHERE person_id = ? ORDER BY completed_at, lesson_id`,
			func(s scanner) error {
				var l ledger.LessonJSON
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

func scanAll(ctx context.Context, tx *Tx, query string, arg any, scan func(s scanner) error) error {
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

// Forget erases a person's personal data in one transaction: name, email (replaced by
// Pseudonym), chat identities and time zone; the texts they wrote (impacts, use cases and
// deny notes of their requests, lesson reflections, the use case quoted in unlock grants);
// their stored Teams conversation and queued messages; their email in the audit log and in
// quarantined events. The ledger's amounts stay, under the pseudonym, so every total and
// `ledger verify` stay true. Prompts they shared stay in the library, credited to the
// pseudonym. The erasure is written to the audit log by actor.
//
// A manager with reports is refused: their reports' approvals would reach no one.
func (db *Store) Forget(ctx context.Context, email, actor string) (ledger.ForgetResult, error) {
	var res ledger.ForgetResult
	now := ms(db.now())
	var after func(context.Context) (bool, error)
	err := db.inTx(ctx, func(tx *Tx) error {
		var err error
		if after, err = db.d.Forgetting(ctx, tx.tx); err != nil {
			return fmt.Errorf("forget %s: %w", email, err)
		}
		var stored, slackID, teamsID string
		var forgotten sql.NullInt64
		err = tx.QueryRowContext(ctx, `SELECT id, email, COALESCE(slack_user_id, ''), COALESCE(teams_user_id, ''), forgotten_at
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
		res.Pseudonym = ledger.Pseudonym(res.PersonID)
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
			{"impacts", `UPDATE impacts SET text = ?, link = '' WHERE person_id = ?`, []any{ledger.ErasedText, id}, &res.Impacts},
			{"requests", `UPDATE requests SET use_case = ?, note = '' WHERE requester_id = ?`, []any{ledger.ErasedText, id}, &res.Requests},
			// A pending request could only be decided on the strength of its erased text.
			{"pending requests", `UPDATE requests SET status = 'cancelled', decided_at = ? WHERE requester_id = ? AND status = 'pending'`, []any{now, id}, nil},
			// Unlock grants quote the use case in their reason; transactions.reason repeats it.
			{"unlock reasons", `UPDATE transactions SET reason = ? WHERE id IN (SELECT tx_id FROM grants WHERE person_id = ? AND kind = 'unlock')`,
				[]any{"unlock: " + ledger.ErasedText, id}, nil},
			{"unlock grants", `UPDATE grants SET reason = ? WHERE person_id = ? AND kind = 'unlock'`, []any{"unlock: " + ledger.ErasedText, id}, nil},
			{"lessons", `UPDATE lesson_progress SET reflection = ? WHERE person_id = ?`, []any{ledger.ErasedText, id}, &res.Lessons},
			// Signed-in browsers and unused sign-in links stop working with the person.
			{"web sessions", `DELETE FROM web_sessions WHERE person_id = ?`, []any{id}, nil},
			{"login links", `DELETE FROM login_links WHERE person_id = ?`, []any{id}, nil},
			{"teams conversation", `DELETE FROM teams_conversations WHERE aad_object_id = ? AND ? <> ''`, []any{teamsID, teamsID}, nil},
			{"outbox", `UPDATE outbox SET status = 'unreachable', last_error = 'person forgotten', owner = '' WHERE person_id = ? AND status IN ('pending', 'sending')`,
				[]any{id}, &res.Messages},
			{"outbox payloads", `UPDATE outbox SET payload = '{}' WHERE person_id = ?`, []any{id}, nil},
			// The email in any case: lower() folds ASCII letters on SQLite, and on PostgreSQL
			// also other letters by the database's locale (the same address, as
			// ledger.NormalizeEmail reads it).
			{"audit subjects", `UPDATE audit_log SET subject = ? WHERE lower(subject) = lower(?)`, []any{res.Pseudonym, stored}, nil},
			{"audit actors", `UPDATE audit_log SET actor = ? WHERE lower(actor) = lower(?)`, []any{res.Pseudonym, stored}, nil},
			{"audit details", `UPDATE audit_log SET detail = replace(replace(detail, ?1, ?2), lower(?1), ?2)
				WHERE replace(replace(detail, ?1, ?2), lower(?1), ?2) <> detail`, []any{stored, res.Pseudonym}, nil},
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
		if err := forgetQueuedUsage(ctx, tx, stored, slackID, teamsID, now); err != nil {
			return fmt.Errorf("forget %s: %w", stored, err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM prompts WHERE author_id = ?`, id).Scan(&res.Prompts); err != nil {
			return fmt.Errorf("forget %s: prompts: %w", stored, err)
		}
		return auditTx(ctx, tx, fromMs(now), actor, "people.forget", res.Pseudonym,
			"personal data erased; ledger amounts kept under the pseudonym")
	})
	if err != nil {
		return ledger.ForgetResult{}, err
	}
	cleared, err := after(ctx)
	if err != nil {
		return res, fmt.Errorf("forget %s: erased, but clearing the engine's log failed: %w", email, err)
	}
	res.WALCleared = cleared
	return res, nil
}

// forgetQueuedUsage erases a person from usage waiting for them. Quarantined events that
// name them (their email in any case, their Slack or Teams id) have those fields emptied
// and are settled, never replayed; a connector's events queued for their email are
// dropped: forgotten people get nothing new. The JSON is read and rewritten here rather
// than with the engines' JSON functions, which differ; a LIKE on the stored text picks
// the rows that may name them first, so only those are read.
func forgetQueuedUsage(ctx context.Context, tx *Tx, email, slackID, teamsID string, now int64) error {
	type named struct{ Email, SlackUserID, TeamsUserID string }
	names := func(payload string) bool {
		var ev named
		if json.Unmarshal([]byte(payload), &ev) != nil {
			return false
		}
		return strings.EqualFold(ev.Email, email) || (slackID != "" && ev.SlackUserID == slackID) ||
			(teamsID != "" && ev.TeamsUserID == teamsID)
	}
	candidates := func(table, key, column string) (map[string]string, error) {
		// lower() on both sides: the engine folds the pattern as it folds the column.
		where, args := []string{`lower(` + column + `) LIKE lower(?) ESCAPE '!'`}, []any{mentionPattern(email)}
		for _, id := range []string{slackID, teamsID} {
			if id != "" {
				where, args = append(where, column+` LIKE ? ESCAPE '!'`), append(args, mentionPattern(id))
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT CAST(`+key+` AS TEXT), `+column+` FROM `+table+` WHERE `+strings.Join(where, " OR "), args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		found := map[string]string{}
		for rows.Next() {
			var k, payload string
			if err := rows.Scan(&k, &payload); err != nil {
				return nil, err
			}
			if names(payload) {
				found[k] = payload
			}
		}
		return found, rows.Err()
	}
	quarantined, err := candidates("quarantine", "id", "payload")
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	for id, payload := range quarantined {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal([]byte(payload), &fields); err != nil {
			return fmt.Errorf("quarantine: event %s: %w", id, err)
		}
		for _, f := range []string{"Email", "SlackUserID", "TeamsUserID"} {
			fields[f] = json.RawMessage(`""`)
		}
		erased, err := json.Marshal(fields)
		if err != nil {
			return fmt.Errorf("quarantine: event %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE quarantine SET payload = ?, reason = ?, resolved_at = COALESCE(resolved_at, ?)
			WHERE id = CAST(? AS BIGINT)`, string(erased), "person forgotten", now, id); err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
	}
	pending, err := candidates("connector_pending", "event_id", "event")
	if err != nil {
		return fmt.Errorf("connector events: %w", err)
	}
	for id, payload := range pending {
		var ev named
		if json.Unmarshal([]byte(payload), &ev) != nil || !strings.EqualFold(ev.Email, email) {
			continue // queued under their chat id only: the connectors match by email
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM connector_pending WHERE event_id = ?`, id); err != nil {
			return fmt.Errorf("connector events: %w", err)
		}
	}
	return nil
}

// mentionPattern is a LIKE pattern (escape character !) for stored JSON that holds s as
// a string value, quoted and escaped as encoding/json writes it.
func mentionPattern(s string) string {
	b, _ := json.Marshal(s)
	return "%" + strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(string(b)) + "%"
}
