package bot

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/tokenpay/tokenpay/ledger"
)

// RequesterContext is what a decider sees beside a request, to decide on more than the
// use case: the requester's use this period, their other open requests, how their
// earlier requests ended, and the outcomes they logged this period. Amounts in credits.
type RequesterContext struct {
	Spent     int64 // credits used this period, overage included
	Allowance int64 // what they had this period: used within the allowance plus available
	Open      []ledger.Request
	Past      map[ledger.RequestStatus]int // decided, expired or cancelled requests by outcome
	Outcomes  int                          // impacts logged this period
	Latest    []ledger.Impact              // the latest of them, newest first
}

// maxContextRequests bounds how far back past requests are counted.
const maxContextRequests = 100

func (h *Handler) requesterContext(ctx context.Context, req ledger.Request) (RequesterContext, error) {
	var c RequesterContext
	start, end := h.period()
	b, err := h.Store.Balance(ctx, req.RequesterID, start, end)
	if err != nil {
		return c, fmt.Errorf("requester context: %w", err)
	}
	c.Spent, c.Allowance = b.Spent, b.Spent-b.Overage+b.Available
	reqs, err := h.Store.RequestsBy(ctx, req.RequesterID, maxContextRequests)
	if err != nil {
		return c, fmt.Errorf("requester context: %w", err)
	}
	c.Past = map[ledger.RequestStatus]int{}
	for _, q := range reqs {
		switch {
		case q.ID == req.ID:
		case q.Status == ledger.RequestPending:
			c.Open = append(c.Open, q)
		default:
			c.Past[q.Status]++
		}
	}
	ims, err := h.Store.Impacts(ctx, req.RequesterID, start, maxContextRequests)
	if err != nil {
		return c, fmt.Errorf("requester context: %w", err)
	}
	c.Outcomes = len(ims)
	c.Latest = ims[:min(3, len(ims))]
	return c, nil
}

// contextBlocks renders the requester's context for deciders.
func contextBlocks(name string, c RequesterContext) []Block {
	used := fmt.Sprintf("%s of %s credits", credits(c.Spent), credits(c.Allowance))
	if c.Allowance > 0 {
		used += fmt.Sprintf(" (%.0f%%)", math.Floor(float64(c.Spent)*100/float64(c.Allowance))) // no int64 product to overflow
	}
	open := "none"
	if len(c.Open) > 0 {
		var ids []string
		for _, q := range c.Open[:min(5, len(c.Open))] {
			ids = append(ids, fmt.Sprintf("#%d for %s", q.ID, credits(q.Amount)))
		}
		open = strings.Join(ids, ", ")
		if len(c.Open) > 5 {
			open += fmt.Sprintf(" and %d more", len(c.Open)-5)
		}
	}
	var past []string
	for _, s := range []struct {
		status ledger.RequestStatus
		word   string
	}{{ledger.RequestApproved, "approved"}, {ledger.RequestDenied, "denied"}, {ledger.RequestExpired, "expired"}, {ledger.RequestCancelled, "cancelled"}} {
		if n := c.Past[s.status]; n > 0 {
			past = append(past, fmt.Sprintf("%d %s", n, s.word))
		}
	}
	if len(past) == 0 {
		past = []string{"none before"}
	}
	blocks := []Block{
		&Heading{Text: "About " + name},
		&Fields{Fields: []Field{
			{Label: "Used this period", Value: used},
			{Label: "Other open requests", Value: open},
			{Label: "Earlier requests", Value: strings.Join(past, ", ")},
			{Label: "Outcomes logged this period", Value: fmt.Sprint(c.Outcomes)},
		}},
	}
	if len(c.Latest) > 0 {
		latest := &List{Title: "Latest outcomes"}
		for _, im := range c.Latest {
			it := Item{Quote: truncateRunes(im.Text, 150)}
			if im.Minutes > 0 {
				it.Text = hours(im.Minutes) + " saved: "
			}
			latest.Items = append(latest.Items, it)
		}
		blocks = append(blocks, latest)
	}
	return blocks
}

// requestSummary is the notification line of a request: who asks for how much, and for what.
func requestSummary(name string, req ledger.Request) string {
	return fmt.Sprintf("%s asks for %s credits: %s", name, credits(req.Amount), truncateRunes(strings.Join(strings.Fields(req.UseCase), " "), 120))
}
