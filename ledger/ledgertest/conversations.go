package ledgertest

import (
	"context"
	"testing"

	"github.com/tokenpay/tokenpay/ledger"
)

// testSlackStops: a stopped token stays stopped with its first reason; another token is
// not stopped.
func testSlackStops(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	if _, ok, err := db.SlackStopped(ctx, "aa"); err != nil || ok {
		t.Fatalf("fresh database: stopped %v, %v", ok, err)
	}
	if err := db.StopSlack(ctx, "aa", ledger.SlackStop{TeamID: "T1", Reason: "app_uninstalled"}); err != nil {
		t.Fatal(err)
	}
	if err := db.StopSlack(ctx, "aa", ledger.SlackStop{TeamID: "T1", Reason: "tokens_revoked"}); err != nil {
		t.Fatal(err)
	}
	s, ok, err := db.SlackStopped(ctx, "aa")
	if err != nil || !ok || s.Reason != "app_uninstalled" || s.TeamID != "T1" || s.StoppedAt.IsZero() {
		t.Errorf("stop = %+v %v %v, want the first one", s, ok, err)
	}
	if _, ok, _ := db.SlackStopped(ctx, "bb"); ok {
		t.Error("another token is stopped")
	}
}
