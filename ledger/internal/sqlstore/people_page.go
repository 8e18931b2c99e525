package sqlstore

import (
	"context"
	"fmt"

	"github.com/tokenpay/tokenpay/ledger"
)

// PeopleAfter lists up to limit people whose id is above afterID, by id: a directory of
// any size read a page at a time (start with 0; a short page is the last).
func (db *Store) PeopleAfter(ctx context.Context, afterID int64, limit int) ([]ledger.Person, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+personColumns+personFrom+`WHERE p.id > ? ORDER BY p.id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list people: %w", err)
	}
	defer rows.Close()
	out := make([]ledger.Person, 0, limit)
	for rows.Next() {
		p, err := scanPerson(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
