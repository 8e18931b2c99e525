package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestBackup(t *testing.T) {
	ctx := context.Background()
	db, people := smallLedger(t)
	target := filepath.Join(t.TempDir(), "copy.db")
	if err := db.Backup(ctx, target); err != nil {
		t.Fatal(err)
	}
	if err := db.Backup(ctx, target); err == nil {
		t.Error("a second backup over the same file succeeded")
	}
	cp, err := Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	cp.SetNow(db.Now)
	if v, err := cp.Verify(ctx); err != nil || len(v) > 0 {
		t.Fatalf("copy fails verify: %v %v", err, v)
	}
	want, err := db.Balance(ctx, people[0].ID, time.Time{}, testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cp.Balance(ctx, people[0].ID, time.Time{}, testNow.Add(time.Hour))
	if err != nil || got != want {
		t.Errorf("copy balance %+v, %v; want %+v", got, err, want)
	}
}
