package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tokenpay/tokenpay/ledger"
)

// ImportPeople upserts a directory by email in one transaction: every problem is reported
// with its line and nothing changes unless the whole file is good.
func (db *Store) ImportPeople(ctx context.Context, recs []ledger.PersonRecord) (ledger.ImportResult, error) {
	var res ledger.ImportResult
	var problems []string
	byEmail := map[string]ledger.PersonRecord{}
	for _, r := range recs {
		k := ledger.NormalizeEmail(r.Email)
		if first, dup := byEmail[k]; dup {
			problems = append(problems, fmt.Sprintf("line %d: %s already appears on line %d", r.Line, r.Email, first.Line))
			continue
		}
		byEmail[k] = r
		if ledger.SameEmail(r.ManagerEmail, r.Email) {
			problems = append(problems, fmt.Sprintf("line %d: %s cannot be their own manager", r.Line, r.Email))
		}
	}
	if len(problems) > 0 {
		return res, ledger.Errorf(ledger.Invalid, "%s", strings.Join(problems, "\n"))
	}
	now := ms(db.now())
	err := db.inBulkTx(ctx, func(tx *Tx) error {
		// People are matched by their email key, so a file may spell an address with other
		// case or composition than the database; the first spelling stays, for display.
		upsert, err := tx.PrepareContext(ctx, `INSERT INTO people(email, email_key, name, team, role, slack_user_id, teams_user_id, joined_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(email_key) WHERE email_key IS NOT NULL DO UPDATE SET name = excluded.name, team = excluded.team, role = excluded.role,
				slack_user_id = COALESCE(excluded.slack_user_id, people.slack_user_id),
				teams_user_id = COALESCE(excluded.teams_user_id, people.teams_user_id), updated_at = excluded.updated_at
			RETURNING id`)
		if err != nil {
			return err
		}
		defer upsert.Close()
		// Whether the person exists, and whether someone else holds their chat ids: a chat id
		// taken is found before the upsert, because on PostgreSQL a failed statement ends
		// the transaction and the import goes on to list every problem.
		exists, err := tx.PrepareContext(ctx, `SELECT (SELECT count(*) FROM people WHERE email_key = ?1),
			(SELECT count(*) FROM people WHERE slack_user_id = ?2 AND (email_key IS NULL OR email_key <> ?1)),
			(SELECT count(*) FROM people WHERE teams_user_id = ?3 AND (email_key IS NULL OR email_key <> ?1))`)
		if err != nil {
			return err
		}
		defer exists.Close()
		ids := make(map[string]int64, len(recs))
		for _, r := range recs {
			var id, found, slackTaken, teamsTaken int64
			key := ledger.NormalizeEmail(r.Email)
			if err := exists.QueryRowContext(ctx, key, r.SlackUserID, r.TeamsUserID).Scan(&found, &slackTaken, &teamsTaken); err != nil {
				return fmt.Errorf("import people line %d: %w", r.Line, err)
			}
			err := error(nil)
			switch {
			case slackTaken > 0 && r.SlackUserID != "":
				err = errSlackTaken
			case teamsTaken > 0 && r.TeamsUserID != "":
				err = errTeamsTaken
			default:
				err = upsert.QueryRowContext(ctx, strings.TrimSpace(r.Email), key, r.Name, r.Team, r.Role, nullStr(r.SlackUserID), nullStr(r.TeamsUserID), now, now).Scan(&id)
			}
			switch {
			case err == errSlackTaken || db.isUnique(err, "people.slack_user_id"):
				problems = append(problems, fmt.Sprintf("line %d: Slack user id %s already belongs to someone else", r.Line, r.SlackUserID))
				continue
			case err == errTeamsTaken || db.isUnique(err, "people.teams_user_id"):
				problems = append(problems, fmt.Sprintf("line %d: Teams user id %s already belongs to someone else", r.Line, r.TeamsUserID))
				continue
			case err != nil:
				return fmt.Errorf("import people line %d: %w", r.Line, err)
			}
			ids[key] = id
			if found == 0 {
				res.Created++
			} else {
				res.Updated++
			}
		}
		setManager, err := tx.PrepareContext(ctx, `UPDATE people SET manager_id = ? WHERE id = ?`)
		if err != nil {
			return err
		}
		defer setManager.Close()
		for _, r := range recs {
			id, ok := ids[ledger.NormalizeEmail(r.Email)]
			if !ok {
				continue
			}
			var mgr int64
			if r.ManagerEmail != "" {
				if m, ok := ids[ledger.NormalizeEmail(r.ManagerEmail)]; ok {
					mgr = m
				} else if err := tx.QueryRowContext(ctx, `SELECT id FROM people WHERE email_key = ?`, ledger.NormalizeEmail(r.ManagerEmail)).Scan(&mgr); err == sql.ErrNoRows {
					problems = append(problems, fmt.Sprintf("line %d: manager %s is not in the directory; add them to the file", r.Line, r.ManagerEmail))
					continue
				} else if err != nil {
					return err
				}
			}
			if _, err := setManager.ExecContext(ctx, nullID(mgr), id); err != nil {
				return fmt.Errorf("import people line %d: set manager: %w", r.Line, err)
			}
		}
		if len(problems) == 0 {
			problems = append(problems, managerCycles(ctx, tx, func(key string) (int, bool) {
				r, ok := byEmail[key]
				return r.Line, ok
			})...)
		}
		if len(problems) > 0 {
			return ledger.Errorf(ledger.Invalid, "%s", strings.Join(problems, "\n"))
		}
		return nil
	})
	if err != nil {
		return ledger.ImportResult{}, err
	}
	return res, nil
}

var (
	errSlackTaken = errors.New("slack user id taken")
	errTeamsTaken = errors.New("teams user id taken")
)

// managerCycles walks the whole manager graph after an import; a cycle is reported once,
// on the line of one of its members when the file names one (lineOf: the file's line of an
// email key).
func managerCycles(ctx context.Context, tx *Tx, lineOf func(key string) (int, bool)) []string {
	// Two sorted slices rather than maps: a directory of a million people fits in 16 MB.
	rows, err := tx.QueryContext(ctx, `SELECT id, COALESCE(manager_id, 0) FROM people ORDER BY id`)
	if err != nil {
		return []string{fmt.Sprintf("check manager cycles: %v", err)}
	}
	var ids, managers []int64
	for rows.Next() {
		var id, m int64
		if err := rows.Scan(&id, &m); err != nil {
			rows.Close()
			return []string{err.Error()}
		}
		ids, managers = append(ids, id), append(managers, m)
	}
	if err := rows.Close(); err != nil {
		return []string{err.Error()}
	}
	index := func(id int64) int {
		if i, ok := slices.BinarySearch(ids, id); ok {
			return i
		}
		return -1
	}
	emailOf := func(id int64) string {
		var e string
		if err := tx.QueryRowContext(ctx, `SELECT email FROM people WHERE id = ?`, id).Scan(&e); err != nil {
			return fmt.Sprintf("person %d", id)
		}
		return e
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]uint8, len(ids))
	var problems []string
	for start := range ids {
		var path []int
		i := start
		for i >= 0 && state[i] == unvisited {
			state[i] = visiting
			path = append(path, i)
			i = index(managers[i])
		}
		if i >= 0 && state[i] == visiting {
			// The cycle is path from i on; it is shown whole, each person followed by their
			// manager and back to the first ("a -> b -> a"), starting from the earliest
			// line of the file (or the smallest email), so the message is stable.
			cycle := path[slices.Index(path, i):]
			email := make([]string, len(cycle))
			for k, p := range cycle {
				email[k] = emailOf(ids[p])
			}
			first, line := 0, 0
			for k := range cycle {
				l, inFile := lineOf(ledger.NormalizeEmail(email[k]))
				switch {
				case inFile && (line == 0 || l < line):
					first, line = k, l
				case line == 0 && email[k] < email[first]:
					first = k
				}
			}
			var names []string
			for k := range len(cycle) + 1 {
				names = append(names, email[(first+k)%len(cycle)])
			}
			problems = append(problems, fmt.Sprintf("line %d: managers form a cycle: %s", line, strings.Join(names, " -> ")))
		}
		for _, p := range path {
			state[p] = done
		}
	}
	return problems
}

const personColumns = `p.id, p.email, p.name, p.team, p.role, COALESCE(p.manager_id, 0), COALESCE(m.email, ''),
	COALESCE(p.slack_user_id, ''), COALESCE(p.teams_user_id, ''), p.time_zone, p.nudges_off, p.digests_off,
	p.preferred_platform, p.joined_at, p.forgotten_at IS NOT NULL`

const personFrom = ` FROM people p LEFT JOIN people m ON m.id = p.manager_id `

func scanPerson(s scanner) (ledger.Person, error) {
	var p ledger.Person
	var joined int64
	err := s.Scan(&p.ID, &p.Email, &p.Name, &p.Team, &p.Role, &p.ManagerID, &p.ManagerEmail, &p.SlackUserID,
		&p.TeamsUserID, &p.TimeZone, &p.NudgesOff, &p.DigestsOff, &p.PreferredPlatform, &joined, &p.Forgotten)
	p.JoinedAt = fromMs(joined)
	return p, err
}

func (db *Store) personWhere(ctx context.Context, where string, arg any, what string) (ledger.Person, error) {
	p, err := scanPerson(db.read.QueryRowContext(ctx, `SELECT `+personColumns+personFrom+`WHERE `+where, arg))
	return p, notFound(err, "%s is not in the directory", what)
}

// PersonByID returns one person.
func (db *Store) PersonByID(ctx context.Context, id int64) (ledger.Person, error) {
	return db.personWhere(ctx, "p.id = ?", id, fmt.Sprintf("person %d", id))
}

// PersonByEmail returns one person by email, compared by ledger.NormalizeEmail (any case,
// any Unicode composition).
func (db *Store) PersonByEmail(ctx context.Context, email string) (ledger.Person, error) {
	p, err := scanPerson(db.read.QueryRowContext(ctx, `SELECT `+personColumns+personFrom+`WHERE p.email_key = ?`, ledger.NormalizeEmail(email)))
	return p, notFound(err, "%s is not in the directory", email)
}

// PersonBySlackID returns the person linked to a Slack user.
func (db *Store) PersonBySlackID(ctx context.Context, id string) (ledger.Person, error) {
	return db.personWhere(ctx, "p.slack_user_id = ?", id, "Slack user "+id)
}

// PersonByTeamsID returns the person linked to a Teams (AAD) user.
func (db *Store) PersonByTeamsID(ctx context.Context, id string) (ledger.Person, error) {
	return db.personWhere(ctx, "p.teams_user_id = ?", id, "Teams user "+id)
}

// People lists everyone, ordered by id.
func (db *Store) People(ctx context.Context) ([]ledger.Person, error) {
	return db.peopleWhere(ctx, "1 = 1")
}

// Reports lists a manager's direct reports.
func (db *Store) Reports(ctx context.Context, managerID int64) ([]ledger.Person, error) {
	return db.peopleWhere(ctx, "p.manager_id = ?", managerID)
}

func (db *Store) peopleWhere(ctx context.Context, where string, args ...any) ([]ledger.Person, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+personColumns+personFrom+`WHERE `+where+` ORDER BY p.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledger.Person
	for rows.Next() {
		p, err := scanPerson(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// LinkChat records a person's chat identity and time zone on first contact; platform is
// "slack" or "teams". It also becomes their preferred platform.
func (db *Store) LinkChat(ctx context.Context, personID int64, platform, userID, timeZone string) error {
	col := map[string]string{"slack": "slack_user_id", "teams": "teams_user_id"}[platform]
	if col == "" {
		return ledger.Errorf(ledger.Invalid, "unknown platform %q", platform)
	}
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE people SET `+col+` = ?, preferred_platform = ?,
			time_zone = CASE WHEN ? = '' THEN time_zone ELSE ? END, updated_at = ? WHERE id = ?`,
			userID, platform, timeZone, timeZone, ms(db.now()), personID)
		if db.isUnique(err, "people."+col) {
			return ledger.Errorf(ledger.Conflict, "that %s account is already linked to someone else", platform)
		}
		return err
	})
}

// SetPreferredPlatform remembers where a person last talked to the bot.
func (db *Store) SetPreferredPlatform(ctx context.Context, personID int64, platform string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE people SET preferred_platform = ? WHERE id = ? AND preferred_platform <> ?`, platform, personID, platform)
		return err
	})
}

// SetNudges turns nudges (and, with digests, weekly digests) on or off for a person.
func (db *Store) SetNudges(ctx context.Context, personID int64, nudgesOff, digestsOff bool) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE people SET nudges_off = ?, digests_off = ?, updated_at = ? WHERE id = ?`,
			nudgesOff, digestsOff, ms(db.now()), personID)
		return err
	})
}
