package postgres_test

import (
	"context"
	"testing"

	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/postgres"
	"github.com/tokenpay/tokenpay/ledger/postgres/pgtest"
)

// store is a ledger on a fresh database of the test cluster; Reopen connects to the same
// database again, as another replica would.
type store struct {
	*postgres.DB
	dsn string
}

func open(t *testing.T, dsn string) store {
	t.Helper()
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open ledger: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return store{db, dsn}
}

func (s store) Reopen(t *testing.T) ledgertest.Store { return open(t, s.dsn) }

// TestConformance holds the PostgreSQL store to the ledger's behaviour (ledger/ledgertest),
// the same suite ledger/sqlite passes.
func TestConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledgertest.Store { return open(t, pgtest.Start(t)) })
}
