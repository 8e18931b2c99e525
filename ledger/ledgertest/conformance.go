package ledgertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/internal/sqlstore"
)

// Opener returns a fresh, migrated, empty store, closed when t ends.
type Opener func(t *testing.T) Store

// Reopener is a test store that can open a second store on its own database, as another
// process (another replica) would. The suite's tests of what several processes share (a
// job run won once, a directory change seen by the other's identity cache) need it; a
// store that lacks it fails them.
type Reopener interface {
	// Reopen opens another store on the same database, closed when t ends. Its clock is
	// the real one until the caller sets it.
	Reopen(t *testing.T) Store
}

// conformance is every behaviour test of the store, by concern: the tests that lived in
// ledger/sqlite until issue 17, written against the ports (ledger.Store) only. A test
// that must reach below the ports uses the store's RawSQL with portable SQL (rawSQL).
var conformance = []struct {
	name string
	test func(t *testing.T, open Opener)
}{
	// Accounts: the double-entry ledger, its bounds, and verify.
	{"VerifyFindsCorruption", testVerifyFindsCorruption},
	{"VerifyIsCleanUnderConcurrentWrites", testVerifyIsCleanUnderConcurrentWrites},
	{"GrantIdempotency", testGrantIdempotency},
	{"ResetNewcomerCarriesNothing", testResetNewcomerCarriesNothing},
	{"LedgerAgainstModel", testLedgerAgainstModel},
	{"WideSumIsExactAndNeverFails", testWideSumIsExactAndNeverFails},
	{"SumsSurviveAbsurdUsage", testSumsSurviveAbsurdUsage},
	{"PeriodBound", testPeriodBound},
	{"UsageRollup", testUsageRollup},
	{"UsageRollupKeepsSums", testUsageRollupKeepsSums},
	{"ConcurrentUsageBatches", testConcurrentUsageBatches},
	{"ConcurrentUsageAcrossPeople", testConcurrentUsageAcrossPeople},
	{"ConcurrentReusedEventIDs", testConcurrentReusedEventIDs},
	// Directory: people, their imports and their email keys.
	{"ImportPeopleProblems", testImportPeopleProblems},
	{"ImportPeopleUpserts", testImportPeopleUpserts},
	{"StagedImportMatchesImportPeople", testStagedImportMatchesImportPeople},
	{"ConcurrentImportsRunOneAtATime", testConcurrentImportsRunOneAtATime},
	{"ImportWaitsAndTakesOverAnIdleOne", testImportWaitsAndTakesOverAnIdleOne},
	{"ImportFindsLostRows", testImportFindsLostRows},
	{"EmailKeyMatchesEverySpelling", testEmailKeyMatchesEverySpelling},
	{"IdentityCacheFollowsOtherProcesses", testIdentityCacheFollowsOtherProcesses},
	// Privacy: export and erasure.
	{"ExportPerson", testExportPerson},
	{"ForgetErasesEverywhereAndKeepsTheBooks", testForgetErasesEverywhereAndKeepsTheBooks},
	{"ForgetRefusals", testForgetRefusals},
	// Access: API keys, login links, sessions.
	{"APIKeys", testAPIKeys},
	{"LoginLinks", testLoginLinks},
	{"Sessions", testSessions},
	// Library: prompts and lessons.
	{"SearchPromptsRelevance", testSearchPromptsRelevance},
	{"SearchPromptsHostileQueries", testSearchPromptsHostileQueries},
	{"SearchOrdersByVotesThenAuthorImpact", testSearchOrdersByVotesThenAuthorImpact},
	{"SearchFoldsCaseAndDiacritics", testSearchFoldsCaseAndDiacritics},
	{"SeedPromptsIdempotent", testSeedPromptsIdempotent},
	{"VotePromptOncePerPerson", testVotePromptOncePerPerson},
	{"ModerationIsAudited", testModerationIsAudited},
	{"TipCandidatesSkipShownUsedOwnHidden", testTipCandidatesSkipShownUsedOwnHidden},
	{"CompleteLessonGrantsOnce", testCompleteLessonGrantsOnce},
	// Insights: activity, nudge lift, period closing.
	{"Activity", testActivity},
	{"NudgeLift", testNudgeLift},
	{"PeriodClosing", testPeriodClosing},
	{"PeriodAndTeamFigures", testPeriodAndTeamFigures},
	{"UsageReadsAcrossDays", testUsageReadsAcrossDays},
	// Requests: the request rules (ledger.DecideRequest) as the store applies them.
	{"DecideFollowsTheRules", testDecideFollowsTheRules},
	{"DecideOnceUnderConcurrentClicks", testDecideOnceUnderConcurrentClicks},
	// Outbox.
	{"OutboxEnqueueDedupes", testOutboxEnqueueDedupes},
	{"OutboxDeliveryStates", testOutboxDeliveryStates},
	{"ClaimDueOutboxSharesTheQueue", testClaimDueOutboxSharesTheQueue},
	{"ClaimDueOutboxPriorityFirst", testClaimDueOutboxPriorityFirst},
	// Jobs and workers.
	{"ClaimJobRun", testClaimJobRun},
	{"ClaimJobRunTwoProcesses", testClaimJobRunTwoProcesses},
	{"HeartbeatAndRemoveWorker", testHeartbeatAndRemoveWorker},
	{"ActiveWorkers", testActiveWorkers},
	// Conversations.
	{"SlackStops", testSlackStops},
}

// Run holds a store implementation to the ledger's behaviour: every test of the suite
// runs as a subtest of t (named as listed in conformance, e.g.
// TestConformance/VerifyFindsCorruption) on fresh stores from open. Each driver's tests
// call it; a driver passes when its store behaves as the ports document, whatever its
// engine. The store open returns must embed *sqlstore.Store (for RawSQL) and implement
// Reopener.
func Run(t *testing.T, open func(t *testing.T) Store) {
	for _, c := range conformance {
		t.Run(c.name, func(t *testing.T) { c.test(t, open) })
	}
}

// testNow is the business clock of most tests: a Friday noon, UTC.
var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// rawSQL is the database under s (sqlstore.Raw), for the few tests that reach below the
// ports. Every driver embeds *sqlstore.Store, which provides it.
func rawSQL(t testing.TB, s Store) sqlstore.Raw {
	t.Helper()
	r, ok := s.(interface{ RawSQL() sqlstore.Raw })
	if !ok {
		t.Fatalf("the store under test (%T) does not expose its database: a driver embeds *sqlstore.Store", s)
	}
	return r.RawSQL()
}

// execSQL runs statements (portable SQL, ? placeholders) on the database under s.
func execSQL(t testing.TB, s Store, query string, args ...any) {
	t.Helper()
	if _, err := rawSQL(t, s).ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// count is the number of rows of table (optionally followed by a WHERE clause).
func count(t testing.TB, s Store, table string) int {
	t.Helper()
	var n int
	if err := rawSQL(t, s).QueryRowContext(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// reopen opens a second store on s's database, as another process would (Reopener).
func reopen(t *testing.T, s Store) Store {
	t.Helper()
	r, ok := s.(Reopener)
	if !ok {
		t.Fatalf("the store under test (%T) cannot open a second store on its database (ledgertest.Reopener); this test needs two processes", s)
	}
	return r.Reopen(t)
}

// seedPeople imports n people p0@example.com ... in team T and returns the directory.
func seedPeople(t testing.TB, db Store, n int) []ledger.Person {
	t.Helper()
	recs := make([]ledger.PersonRecord, n)
	for i := range recs {
		recs[i] = ledger.PersonRecord{Line: i + 2, Email: fmt.Sprintf("p%d@example.com", i), Name: fmt.Sprintf("Person %d", i), Team: "T", Role: "engineer"}
	}
	if _, err := db.ImportPeople(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	ps, err := db.People(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// smallLedger holds two people; p0 has a 1,000-credit grant and spent 1,200 of it (200
// overage), p1 has nothing. The clock is testNow.
func smallLedger(t *testing.T, open Opener) (Store, []ledger.Person) {
	t.Helper()
	ctx := context.Background()
	db := open(t)
	db.SetNow(func() time.Time { return testNow })
	people := seedPeople(t, db, 2)
	if _, err := db.Grant(ctx, ledger.GrantInput{Key: "g1", PersonID: people[0].ID, Kind: ledger.GrantBaseline, Amount: 1000,
		ExpiresAt: testNow.Add(72 * time.Hour), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	res, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: "u1", Email: people[0].Email, Model: "m",
		OccurredAt: testNow}, Credits: 1200}})
	if err != nil || res[0].Status != ledger.UsageAccepted {
		t.Fatalf("usage: %+v, %v", res, err)
	}
	return db, people
}

// sha256Hex is how the store keeps a secret: its SHA-256, never the secret.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
