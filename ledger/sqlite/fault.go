package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mattn/go-sqlite3"
	"github.com/tokenpay/tokenpay/ledger"
)

// RestoreAdvice is the sentence every refusal of a damaged database ends with.
const RestoreAdvice = "restore it from a backup: stop tokenpay, run `tokenpay restore BACKUP-FILE` (README, \"Backup and restore\"), then start it again"

// IsCorrupt reports whether err is SQLite saying the file is damaged or not a database.
func IsCorrupt(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB)
}

// QuickCheck runs SQLite's quick_check (every page and b-tree structure, without matching
// indexes to tables; O(pages)) and returns an error naming up to five problems and what to
// do, or nil when the file is intact.
func (db *DB) QuickCheck(ctx context.Context) error {
	rows, err := db.read.QueryContext(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		if IsCorrupt(err) {
			return ledger.Errorf(ledger.Invalid, "the database %s is damaged (%v); %s", db.Path, err, RestoreAdvice)
		}
		return fmt.Errorf("check database %s: %w", db.Path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("check database %s: %w", db.Path, err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		if IsCorrupt(err) {
			return ledger.Errorf(ledger.Invalid, "the database %s is damaged (%v); %s", db.Path, err, RestoreAdvice)
		}
		return fmt.Errorf("check database %s: %w", db.Path, err)
	}
	if len(problems) > 0 {
		return ledger.Errorf(ledger.Invalid, "the database %s is damaged (%s); %s", db.Path, strings.Join(problems, "; "), RestoreAdvice)
	}
	return nil
}

// FilesIntact reports whether the database file, and its WAL, are still the files this
// process opened. Someone deleting or replacing either under a running process (a cleanup
// script, a restore by copying files) leaves SQLite writing to a file no one will read
// again: everything acknowledged since would be lost at the next start.
func (db *DB) FilesIntact() error {
	fi, err := os.Stat(db.Path)
	if err != nil {
		return fmt.Errorf("the database file %s is gone (%v); stop tokenpay with SIGTERM and %s", db.Path, err, RestoreAdvice)
	}
	if db.opened != nil && !os.SameFile(fi, db.opened) {
		return fmt.Errorf("the database file %s was replaced while tokenpay had it open; stop tokenpay with SIGTERM and start it again on the file you mean", db.Path)
	}
	// On Linux the process's open files say whether one of ours was unlinked: its link
	// reads "PATH (deleted)". SQLite keeps the WAL open from the first connection to the
	// last, so a deleted WAL shows there.
	abs, err := filepath.Abs(db.Path)
	if err != nil {
		return nil
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil || !strings.HasSuffix(target, " (deleted)") {
			continue
		}
		switch strings.TrimSuffix(target, " (deleted)") {
		case abs + "-wal":
			return fmt.Errorf("the write-ahead log %s-wal was deleted while tokenpay had it open; recent writes live only in this process: "+
				"stop tokenpay with SIGTERM (not kill -9) so it copies them into the database, then start it again", db.Path)
		case abs:
			return fmt.Errorf("the database file %s was deleted while tokenpay had it open; stop tokenpay with SIGTERM and %s", db.Path, RestoreAdvice)
		}
	}
	return nil
}
