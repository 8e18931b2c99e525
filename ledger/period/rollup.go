package period

import (
	"context"
	"fmt"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// RollUp rolls up the usage of periods that ended more than usage.retention_months before
// at (policy.Policy.RollupBefore; see ledger.RollupInput for what it keeps), grouping rows
// by the days of the org's calendar. actor names who asked, for the audit log. With
// retention off (0) it does nothing and says so. The nightly usage-rollup job and
// `tokenpay ledger rollup` call it.
func RollUp(ctx context.Context, db ledger.Store, pol *policy.Policy, at time.Time, actor string, dryRun bool) (ledger.RollupResult, error) {
	before := pol.RollupBefore(at)
	if before.IsZero() {
		return ledger.RollupResult{DryRun: dryRun}, nil
	}
	res, err := db.RollUpUsage(ctx, ledger.RollupInput{Before: before, Zone: pol.Location(), DryRun: dryRun, Actor: actor})
	if err != nil {
		return res, fmt.Errorf("roll up usage before %s: %w", before.In(pol.Location()).Format("2006-01-02"), err)
	}
	return res, nil
}

// RollupText says what a roll-up did, for the job's result and the command's output, with
// days in the org's zone: "rolled up 1,204 usage rows (1,380 events) dated before
// 2025-10-01 into 310; 894 rows fewer".
func RollupText(pol *policy.Policy, res ledger.RollupResult) string {
	if res.Before.IsZero() {
		return "usage.retention_months is 0: every usage row is kept"
	}
	day := res.Before.In(pol.Location()).Format("2006-01-02")
	verb := "rolled up"
	if res.DryRun {
		verb = "would roll up"
	}
	if res.Rows == 0 {
		if !res.From.IsZero() && !res.Before.After(res.From) {
			return "usage dated before " + day + " is already rolled up"
		}
		return "no usage dated before " + day + " to roll up"
	}
	return fmt.Sprintf("%s %s usage rows (%s events) dated before %s into %s; %s rows fewer", verb,
		ledger.FormatCredits(res.Rows), ledger.FormatCredits(res.Events), day, ledger.FormatCredits(res.Summaries), ledger.FormatCredits(res.Rows-res.Summaries))
}
