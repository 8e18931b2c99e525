package ledger

import "time"

// ActivityWindow names the instants segment statistics are read over (business clock).
type ActivityWindow struct {
	At          time.Time // now, or the time a job runs as
	PeriodStart time.Time // start of the allowance period holding At
	WindowStart time.Time // start of the rolling window (segments.window_days)
	// QuietSince is how far back LastUse looks (segments.dormant_days); zero: to the
	// first usage of the ledger, which costs a seek per day of history and person.
	QuietSince time.Time
	// AfterID, ThroughID and Limit read one page of the directory: the people whose id
	// is above AfterID and at most ThroughID (0: no bound), at most Limit of them (0: no
	// limit), by id; a short page is the last. The zero values read everyone, which a
	// large organisation should not do in one go.
	AfterID   int64
	ThroughID int64
	Limit     int
}

// PersonActivity is one person's use and outcomes, as segmentation reads them.
type PersonActivity struct {
	PersonID      int64
	SpentPeriod   int64     // credits consumed in [PeriodStart, At), overage included
	OveragePeriod int64     // the part of SpentPeriod beyond the balance
	SpentWindow   int64     // credits consumed in [WindowStart, At)
	LastUse       time.Time // latest use in [QuietSince, At); zero if none
	Available     int64     // open grants in effect at At
	ImpactsWindow int       // outcomes logged in [WindowStart, At)
	ImpactsPeriod int       // outcomes logged in [PeriodStart, At)
	MinutesPeriod int64     // time saved those outcomes report
	LastNudge     time.Time // latest nudge (or hold-out record) at or before At; zero if none
}

// LiftCounts compares people nudged with people held out of nudges: how many of each
// were active again within the window after their first record.
type LiftCounts struct {
	Nudged, NudgedActive   int
	HeldOut, HeldOutActive int
}

// Closing is what the reset at the end of a period did with unspent credits, and what
// admins reallocated from the reclaimed credits during it.
type Closing struct {
	Expired   int64 // credits that expired into the reclaimable pool
	Carried   int64 // credits carried into the next period
	Reclaimed int64 // reclaimed credits reallocated during the period
	// Hoarders let more than the policy's share of the period's credits expire; Hoarded
	// is what they let expire.
	Hoarders int
	Hoarded  int64
}

// Allowance is what the person had this period: what they spent within their balance
// plus what is left.
func (a PersonActivity) Allowance() int64 {
	return SatAdd(SatSub(a.SpentPeriod, a.OveragePeriod), a.Available)
}
