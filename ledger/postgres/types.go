package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Flags are 0/1 BIGINT columns on both engines (the shared SQL compares them with 0 and
// 1), and the store binds Go bools to them, as mattn/go-sqlite3 allows. pgx encodes a
// bool only into boolean, so each connection learns to write a bool bound to any other
// type as the integer 0 or 1. A bool bound to a boolean parameter is unchanged: pgx tries
// these wrappers only when the type has no plan of its own for the value. Scanning such
// a column into a bool needs nothing: database/sql converts the integers 0 and 1.
func registerTypes(_ context.Context, c *pgx.Conn) error {
	m := c.TypeMap()
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryBoolAsInt}, m.TryWrapEncodePlanFuncs...)
	return nil
}

func tryBoolAsInt(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if _, ok := value.(bool); ok {
		return &boolAsInt{}, int64(0), true
	}
	return nil, nil, false
}

type boolAsInt struct{ next pgtype.EncodePlan }

func (p *boolAsInt) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *boolAsInt) Encode(value any, buf []byte) ([]byte, error) {
	if value.(bool) {
		return p.next.Encode(int64(1), buf)
	}
	return p.next.Encode(int64(0), buf)
}
