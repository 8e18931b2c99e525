package ledger

import "time"

// Activity is one line of a person's history.
type Activity struct {
	TxID   int64
	At     time.Time
	Kind   string
	Amount int64 // credits into (positive) or out of (negative) the person's available balance
	Reason string
}

// PersonPeriod is one person's figures over one period [start, end), for the dashboard,
// which adds them up by team or by manager. Amounts in credits.
type PersonPeriod struct {
	PersonID  int64
	Granted   int64 // credits granted with effect in the period
	Spent     int64 // credits consumed in the period, overage included
	Expired   int64 // credits the reset closing the period sent to the reclaimable pool
	Logged    int   // outcomes logged in the period
	Validated int   // of those, validated by a manager
	Minutes   int64 // time saved those outcomes report, in minutes
}

// TeamStat is one team's allocation and use in a period.
type TeamStat struct {
	Team     string
	People   int
	Granted  int64 // credits granted with effect in the period
	Spent    int64
	Approved int
	Denied   int
}
