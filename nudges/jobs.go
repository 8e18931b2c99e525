package nudges

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

// Message kinds in the outbox; with the person and a period they make the dedupe key.
const (
	KindDigest         = "weekly-digest"
	KindManagerDigest  = "manager-digest"
	KindNudge          = "nudge"
	KindHeadsUp        = "heads-up"
	KindAdminReport    = "admin-report"
	KindRequestExpired = "request-expired"
)

// Priority is the delivery rank of a kind in the outbox, lower first: what a person is
// waiting for (the fate of their request) before heads-ups, those before digests and
// reports, and nudges last. Approvals and replies to commands do not queue at all: they
// go out at once and take their slot ahead of the outbox (bot.Budget.Take).
func Priority(kind string) int {
	switch kind {
	case KindRequestExpired:
		return 0
	case KindHeadsUp:
		return 1
	case KindNudge:
		return 3
	}
	return 2
}

// ActivationWindow is how soon after a nudge use counts as the nudge working.
const ActivationWindow = 7 * day

// Service does what each scheduled job does. Every job only queues messages (the outbox
// delivers them) and is idempotent, so a run can be repeated after a crash.
type Service struct {
	Store  ledger.Store
	Policy *policy.Policy
	// Tips is the prompt library; nil sends messages without a tip.
	Tips     Tips
	Ingestor *usage.Ingestor
	// RefreshApproval, when set, updates an expired request's approval messages in place
	// (bot.Handler.RefreshApproval), so deciders no longer see its buttons.
	RefreshApproval func(ctx context.Context, req ledger.Request) error
	// DashboardURL is TOKENPAY_PUBLIC_URL; when set, digests and the admin report end with
	// a link to the matching page of the dashboard.
	DashboardURL string
	// PageSize is how many people a job reads, places and queues at a time
	// (DefaultPageSize when 0): memory follows the page, not the directory.
	PageSize int
	Log      zerolog.Logger
}

// withLink ends r with a link to the dashboard page at path, when the dashboard's URL is known.
func (s *Service) withLink(r bot.Reply, path, what string) bot.Reply {
	if s.DashboardURL == "" {
		return r
	}
	r.Blocks = append(r.Blocks, &bot.Context{Text: what + ": " + strings.TrimRight(s.DashboardURL, "/") + path})
	return r
}

// Run performs one run of a job (a JobFunc).
func (s *Service) Run(ctx context.Context, run Run) (string, error) {
	switch run.Job {
	case policy.JobPeriodReset:
		sum, err := period.Reset(ctx, s.Store, s.Policy, run.At)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("period %s opened for %s: %s credits expired, %s carried, %s baseline granted",
			sum.Period, plural(sum.People, "person", "people"), credits(sum.Expired), credits(sum.Carried), credits(sum.Baseline)), nil
	case policy.JobWeeklyDigest:
		return s.weeklyDigest(ctx, run)
	case policy.JobManagerDigest:
		return s.managerDigest(ctx, run)
	case policy.JobNudges:
		return s.nudges(ctx, run)
	case policy.JobAdminReport:
		return s.adminReport(ctx, run)
	case policy.JobExpireRequests:
		return s.expireRequests(ctx, run)
	case policy.JobQuarantineReplay:
		if s.Ingestor == nil {
			return "", fmt.Errorf("quarantine replay: no usage ingestor configured")
		}
		replayed, waiting, err := s.Ingestor.ReplayQuarantine(ctx)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("replayed %d quarantined usage events, %d still waiting for their person", replayed, waiting), nil
	case policy.JobUsageRollup:
		res, err := period.RollUp(ctx, s.Store, s.Policy, run.At, "scheduler", false)
		if err != nil {
			return "", err
		}
		return period.RollupText(s.Policy, res), nil
	}
	return "", fmt.Errorf("unknown job %q (jobs: %v)", run.Job, policy.Jobs())
}

// queue gathers messages and writes them a chunk at a time, so that memory stays flat
// however large the directory.
type queue struct {
	s     *Service
	at    time.Time
	msgs  []ledger.OutboxMessage
	log   []ledger.NudgeRecord
	added int
	total int
}

const queueChunk = 2000

func (s *Service) newQueue(at time.Time) *queue { return &queue{s: s, at: at} }

func (q *queue) add(ctx context.Context, p ledger.Person, kind, period string, r bot.Reply, tip int64) error {
	payload, err := bot.MarshalReply(r)
	if err != nil {
		return fmt.Errorf("%s for %s: %w", kind, p.Email, err)
	}
	notBefore, reason := HoldUntil(q.s.Policy, p, q.at)
	q.msgs = append(q.msgs, ledger.OutboxMessage{Kind: kind, PersonID: p.ID, PeriodKey: period, Payload: payload,
		NotBefore: notBefore, HoldReason: reason, TipPromptID: tip, Priority: Priority(kind)})
	q.total++
	if len(q.msgs) >= queueChunk {
		return q.flush(ctx)
	}
	return nil
}

func (q *queue) record(ctx context.Context, r ledger.NudgeRecord) error {
	q.log = append(q.log, r)
	if len(q.log) >= queueChunk {
		return q.flush(ctx)
	}
	return nil
}

func (q *queue) flush(ctx context.Context) error {
	n, err := q.s.Store.EnqueueNudges(ctx, q.msgs, q.log)
	q.added += n
	q.msgs, q.log = q.msgs[:0], q.log[:0]
	return err
}

// summary says what was queued, e.g. "queued 120 digests (3 already queued)"; what is
// the plural noun.
func (q *queue) summary(what string) string {
	s := fmt.Sprintf("queued %d %s", q.added, what)
	if q.added == 1 {
		s = "queued 1 " + strings.TrimSuffix(what, "s")
	}
	if dup := q.total - q.added; dup > 0 {
		s += fmt.Sprintf(" (%d already queued)", dup)
	}
	return s
}

// weekKey names the ISO week of t in the org's zone: digests are once a week per person.
func (s *Service) weekKey(t time.Time) (string, int) {
	y, w := t.In(s.Policy.Location()).ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w), w
}

// periodName is how messages name the period holding t: "November" or "this week".
func (s *Service) periodName(t time.Time) string {
	if s.Policy.Period == policy.PeriodWeekly {
		return "this week"
	}
	return s.Policy.PeriodStart(t).In(s.Policy.Location()).Format("January")
}

func (s *Service) weeklyDigest(ctx context.Context, run Run) (string, error) {
	tips := newTipPicker(s.Store, s.Tips)
	week, _ := s.weekKey(run.Slot)
	name := s.periodName(run.At)
	q := s.newQueue(run.At)
	off := 0
	daysLeft := daysUntil(run.At, s.Policy.PeriodEnd(run.At))
	_, err := s.EachPage(ctx, run.At, func(page []Member) error {
		if err := tips.load(ctx, page); err != nil {
			return err
		}
		for _, m := range page {
			if m.Person.DigestsOff {
				off++
				continue
			}
			tip, ok, err := tips.pick(ctx, m.Person)
			if err != nil {
				return err
			}
			var tipRef *ledger.Prompt
			if ok {
				tipRef = &tip
			}
			if err := q.add(ctx, m.Person, KindDigest, week, s.withLink(DigestReply(m, tipRef, daysLeft, name), "/dashboard/me", "Your page in the dashboard"), tip.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := q.flush(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s for %s; %d turned digests off", q.summary("digests"), week, off), nil
}

// managerDigest reads the directory twice, a page at a time: first to sum up each
// manager's reports (teamSummary: counts and at most maxListed names, not the people),
// then to queue a digest to each manager in id order.
func (s *Service) managerDigest(ctx context.Context, run Run) (string, error) {
	pending, err := s.Store.PendingRequests(ctx)
	if err != nil {
		return "", fmt.Errorf("manager digest: %w", err)
	}
	waiting := map[int64][]ledger.Request{}
	names := map[int64]string{}
	for _, r := range pending {
		if r.ApproverID != 0 {
			waiting[r.ApproverID] = append(waiting[r.ApproverID], r)
			names[r.RequesterID] = ""
		}
	}
	teams := map[int64]*teamSummary{}
	_, err = s.EachPage(ctx, run.At, func(page []Member) error {
		for _, m := range page {
			if _, ok := names[m.Person.ID]; ok {
				names[m.Person.ID] = m.Person.Name
			}
			if id := m.Person.ManagerID; id != 0 {
				t := teams[id]
				if t == nil {
					t = &teamSummary{}
					teams[id] = t
				}
				t.add(m)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	week, _ := s.weekKey(run.Slot)
	q := s.newQueue(run.At)
	size := s.pageSize()
	for after := int64(0); len(teams) > 0; {
		people, err := s.Store.PeopleAfter(ctx, after, size)
		if err != nil {
			return "", fmt.Errorf("manager digest: %w", err)
		}
		for _, p := range people {
			team := teams[p.ID]
			delete(teams, p.ID)
			if team == nil || p.DigestsOff {
				continue
			}
			if err := q.add(ctx, p, KindManagerDigest, week, s.withLink(managerDigestReply(p, team, waiting[p.ID], names), "/dashboard/team", "Your team in the dashboard"), 0); err != nil {
				return "", err
			}
		}
		if len(people) < size {
			break
		}
		after = people[len(people)-1].ID
	}
	if err := q.flush(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s for %s", q.summary("manager digests"), week), nil
}

func (s *Service) nudges(ctx context.Context, run Run) (string, error) {
	pol := s.Policy
	tips := newTipPicker(s.Store, s.Tips)
	_, week := s.weekKey(run.At)
	headsUpKey := pol.PeriodKey(run.At)
	name := s.periodName(run.At)
	daysLeft := daysUntil(run.At, pol.PeriodEnd(run.At))
	q := s.newQueue(run.At)
	headsUps := 0
	decisions := map[Decision]int{}
	_, err := s.EachPage(ctx, run.At, func(page []Member) error {
		if err := tips.load(ctx, page); err != nil {
			return err
		}
		for _, m := range page {
			// A heads-up is about access, not a nudge: everyone gets it, the holdout group and
			// those who turned nudges off included. A percent of 0 turns heads-ups off.
			if pct := pol.Nudges.HeadsUpPercent; pct > 0 && daysLeft > 0 && m.Activity.Allowance() > 0 && m.UsedRatio()*100 >= float64(pct) {
				headsUps++
				if err := q.add(ctx, m.Person, KindHeadsUp, headsUpKey, HeadsUpReply(m, daysLeft, name), 0); err != nil {
					return err
				}
			}
			d := Decide(pol, m, run.At)
			decisions[d]++
			rec := ledger.NudgeRecord{PersonID: m.Person.ID, RunKey: run.Key, At: run.At, Segment: string(m.Segment)}
			switch d {
			case HeldOut:
				rec.HeldOut = true
				if err := q.record(ctx, rec); err != nil {
					return err
				}
			case SendNudge:
				var reply bot.Reply
				var tipID int64
				if m.Segment == HeavyNoGains {
					reply = QualityReply(m, week)
				} else {
					tip, ok, err := tips.pick(ctx, m.Person)
					if err != nil {
						return err
					}
					var tipRef *ledger.Prompt
					if ok {
						tipRef, tipID = &tip, tip.ID
					}
					reply = NudgeReply(m, tipRef, daysLeft)
				}
				if err := q.record(ctx, rec); err != nil {
					return err
				}
				if err := q.add(ctx, m.Person, KindNudge, run.Key, reply, tipID); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := q.flush(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (%d heads-ups, %d nudges); not nudged: %d held out, %d turned off, %d nudged recently, %d with nudges disabled",
		q.summary("messages"), headsUps, decisions[SendNudge], decisions[HeldOut], decisions[OptedOut], decisions[TooSoon], decisions[Disabled]), nil
}

func (s *Service) adminReport(ctx context.Context, run Run) (string, error) {
	pol := s.Policy
	// The report covers the period before the slot's (on the 1st, last month).
	prev := pol.PeriodStart(run.Slot).Add(-time.Nanosecond)
	start, end, key := pol.PeriodStart(prev), pol.PeriodEnd(prev), pol.PeriodKey(prev)
	stats, err := s.Store.TeamStats(ctx, start, end)
	if err != nil {
		return "", fmt.Errorf("admin report: %w", err)
	}
	closing, err := s.Store.PeriodClosing(ctx, key, start, end, pol.Segments.HoardingBalanceRatio)
	if err != nil {
		return "", err
	}
	counts, err := s.Store.NudgeLift(ctx, start, end, run.At, ActivationWindow, string(Dormant), string(Underuser))
	if err != nil {
		return "", err
	}
	outbox, err := s.Store.OutboxCounts(ctx, start, end)
	if err != nil {
		return "", err
	}
	name := start.In(pol.Location()).Format("January 2006")
	if pol.Period == policy.PeriodWeekly {
		name = "the week of " + start.In(pol.Location()).Format("2 January 2006")
	}
	rep := AdminReport{Org: pol.Org.Name, Period: name, Teams: stats, Gini: Gini(stats), Closing: closing,
		Lift: ComputeLift(counts), Dead: outbox[ledger.OutboxDead], Attempts: pol.Outbox.MaxAttempts}
	reply := s.withLink(rep.Reply(), "/dashboard/org", "Charts and tables in the dashboard")
	q := s.newQueue(run.At)
	var missing []string
	for _, email := range pol.Admins {
		p, err := s.Store.PersonByEmail(ctx, email)
		if ledger.ErrorCode(err) == ledger.NotFound {
			missing = append(missing, email)
			continue
		}
		if err != nil {
			return "", fmt.Errorf("admin report: %w", err)
		}
		if err := q.add(ctx, p, KindAdminReport, key, reply, 0); err != nil {
			return "", err
		}
	}
	if err := q.flush(ctx); err != nil {
		return "", err
	}
	result := fmt.Sprintf("%s for %s", q.summary("admin reports"), key)
	if len(missing) > 0 {
		result += fmt.Sprintf("; admins not in the directory: %v", missing)
	}
	if len(pol.Admins) == 0 {
		result += "; the policy names no admins to send it to"
	}
	return result, nil
}

func (s *Service) expireRequests(ctx context.Context, run Run) (string, error) {
	expired, err := s.Store.ExpireRequests(ctx)
	if err != nil {
		return "", fmt.Errorf("expire requests: %w", err)
	}
	q := s.newQueue(run.At)
	for _, r := range expired {
		p, err := s.Store.PersonByID(ctx, r.RequesterID)
		if err != nil {
			return "", fmt.Errorf("expire requests: %w", err)
		}
		if err := q.add(ctx, p, KindRequestExpired, fmt.Sprintf("request-%d", r.ID), ExpiredReply(r, Location(s.Policy, p)), 0); err != nil {
			return "", err
		}
	}
	if err := q.flush(ctx); err != nil {
		return "", err
	}
	result := fmt.Sprintf("expired %s; %s", plural(len(expired), "request", "requests"), q.summary("notices"))
	if s.RefreshApproval == nil || len(expired) == 0 {
		return result, nil
	}
	// The requests have expired whatever happens here; a message left behind still
	// answers a late click with "expired", so a failure is logged and counted, not fatal.
	var updated, unreachable, failed int
	for _, r := range expired {
		switch err := s.RefreshApproval(ctx, r); {
		case err == nil:
			updated++
		case errors.Is(err, bot.ErrUnreachable):
			unreachable++
		default:
			failed++
			s.Log.Warn().Err(err).Int64("request", r.ID).Msg("approval message not updated after expiry")
		}
	}
	result += fmt.Sprintf("; approval messages updated for %d", updated)
	if unreachable > 0 {
		result += fmt.Sprintf(", %d with no decider on a chat platform", unreachable)
	}
	if failed > 0 {
		result += fmt.Sprintf(", %d could not be (see the log)", failed)
	}
	return result, nil
}
