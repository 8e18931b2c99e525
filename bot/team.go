package bot

import (
	"context"
	"crypto/rand"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// team shows a manager their reports' usage (alphabetical, never ranked), the requests
// they may decide and outcomes to validate, each with its own buttons; page (from 0)
// selects which maxListed of the requests and outcomes are shown.
func (h *Handler) team(ctx context.Context, actor ledger.Person, page int) Reply {
	reports, err := h.Store.Reports(ctx, actor.ID)
	if err != nil {
		return h.fail(err, "team")
	}
	isAdmin := h.Policy.IsAdmin(actor.Email)
	if len(reports) == 0 && !isAdmin {
		return textReply("You have no direct reports in the directory, so there is no team view for you. Your own allowance: /tokens balance.")
	}
	sort.Slice(reports, func(i, j int) bool { return reports[i].Name < reports[j].Name })
	start, end := h.period()
	r := Reply{Header: "Your team's AI tokens"}
	if len(reports) == 0 {
		// An admin without reports has no team: only the admin queue, under its own title.
		r.Header = "Requests waiting for an admin"
	}
	more := false
	// lastPage is the last page any of the lists has, for the way back from past the end.
	lastPage := 0
	pages := func(n int) { lastPage = max(lastPage, (n-1)/maxListed) }
	if len(reports) > 0 {
		people := &List{}
		for _, p := range reports {
			b, err := h.Store.Balance(ctx, p.ID, start, end)
			if err != nil {
				return h.fail(err, "team")
			}
			ims, err := h.Store.Impacts(ctx, p.ID, start, 100)
			if err != nil {
				return h.fail(err, "team")
			}
			used := ledger.SatSub(b.Spent, b.Overage)
			had := ledger.SatAdd(used, b.Available)
			bar := usageBar(used, b.Spent, had)
			people.Items = append(people.Items, Item{Text: fmt.Sprintf("%s  %s  · %s of %s credits · %s logged", bar, p.Name, credits(b.Spent), credits(had), plural(len(ims), "outcome"))})
		}
		r.Blocks = append(r.Blocks, people,
			&Context{Text: "Low use is a chance to help, not a problem: share a prompt that worked for you, or point them to /tokens learn."})
		// Requests are filed to the manager of the day, so they are found by approver.
		pending, err := h.Store.PendingRequests(ctx, actor.ID)
		if err != nil {
			return h.fail(err, "team")
		}
		pages(len(pending))
		more = h.appendPending(ctx, &r, pending, page) || more
		more = h.appendImpacts(ctx, &r, reports, start, page, pages) || more
	}
	if isAdmin {
		all, err := h.Store.PendingRequests(ctx)
		if err != nil {
			return h.fail(err, "team")
		}
		var adminQueue []ledger.Request
		for _, q := range all {
			if q.RequesterID != actor.ID && (q.ApproverID == 0 || (q.NeedsAdmin && q.AdminApproval == 0)) && q.ApproverID != actor.ID && q.ManagerApproval != actor.ID {
				adminQueue = append(adminQueue, q)
			}
		}
		switch {
		case len(adminQueue) > 0 && len(reports) == 0:
			pages(len(adminQueue))
			more = h.appendPending(ctx, &r, adminQueue, page) || more
		case len(adminQueue) > 0:
			r.Blocks = append(r.Blocks, &Divider{}, &Heading{Text: "Waiting for an admin"})
			pages(len(adminQueue))
			more = h.appendPending(ctx, &r, adminQueue, page) || more
		case len(reports) == 0:
			r.Blocks = append(r.Blocks, &Context{Text: "No requests are waiting for an admin."})
		}
	}
	var nav []Button
	if page > 0 {
		nav = append(nav, Button{Label: "Previous", Action: Action{Kind: ActTeam, Value: fmt.Sprint(min(page, lastPage) - 1)}})
	}
	if more {
		nav = append(nav, Button{Label: "Show more", Action: Action{Kind: ActTeam, Value: fmt.Sprint(page + 1)}})
	}
	if len(nav) > 0 {
		r.Blocks = append(r.Blocks, &Buttons{Buttons: nav})
	}
	return r
}

// usageBar draws a person's use of their allowance: the bar fills up to the allowance, and
// the percentage is of the allowance, beyond 100% when they spent more (3.2 times the
// allowance reads 320%, not 100%). used is what their grants covered, spent includes
// overage, allowance is used plus what is left.
func usageBar(used, spent, allowance int64) string {
	bar, _, _ := strings.Cut((&Progress{Value: used, Max: allowance}).Bar(10), " ")
	pct := int64(0)
	if allowance > 0 {
		pct = ledger.SatFloat(float64(spent)/float64(allowance)*100 + 0.5)
	} else if spent > 0 {
		return bar + " over"
	}
	return fmt.Sprintf("%s %s%%", bar, credits(pct))
}

// maxListed keeps a team view within platform message limits: at most this many requests
// and outcomes on one page.
const maxListed = 10

// maxTeamPage bounds a page number taken from a button.
const maxTeamPage = 1000

// pageOf returns the part of n entries that page shows and whether more follow; a page
// past the end shows the last one.
func pageOf(n, page int) (from, to int, more bool) {
	last := max(0, (n-1)/maxListed)
	from = min(page, last) * maxListed
	to = min(from+maxListed, n)
	return from, to, to < n
}

// appendPending lists the page of pending requests, each with its own Approve, Deny and
// Ask; it reports whether more follow.
func (h *Handler) appendPending(ctx context.Context, r *Reply, pending []ledger.Request, page int) bool {
	if len(pending) == 0 {
		r.Blocks = append(r.Blocks, &Context{Text: "No requests waiting for you."})
		return false
	}
	list := &List{Title: fmt.Sprintf("%s waiting for a decision", plural(len(pending), "request"))}
	from, to, more := pageOf(len(pending), page)
	for _, q := range pending[from:to] {
		p, err := h.Store.PersonByID(ctx, q.RequesterID)
		if err != nil {
			continue
		}
		id := fmt.Sprint(q.ID)
		list.Items = append(list.Items, Item{
			Text:  fmt.Sprintf("#%d · %s asks for %s credits: ", q.ID, p.Name, credits(q.Amount)),
			Quote: truncateRunes(q.UseCase, 300),
			Buttons: []Button{
				{Label: "Approve", Action: Action{Kind: ActApprove, Value: id}, Style: StylePrimary},
				{Label: "Deny", Action: Action{Kind: ActDeny, Value: id}, Style: StyleDanger},
				{Label: "Ask", Action: Action{Kind: ActAsk, Value: id}},
			}})
	}
	if more {
		list.More = fmt.Sprintf("…and %d more.", len(pending)-to)
	} else if from > 0 {
		list.More = fmt.Sprintf("The last %d of %d.", to-from, len(pending))
	}
	if len(r.Blocks) > 0 {
		r.Blocks = append(r.Blocks, &Divider{})
	}
	r.Blocks = append(r.Blocks, list)
	return more
}

// appendImpacts lists the page of outcomes to validate, each with its own Validate
// button; it reports whether more follow.
func (h *Handler) appendImpacts(ctx context.Context, r *Reply, reports []ledger.Person, since time.Time, page int, pages func(int)) bool {
	var open []Item
	for _, p := range reports {
		ims, err := h.Store.Impacts(ctx, p.ID, since, 100)
		if err != nil {
			continue
		}
		for _, im := range ims {
			if im.ValidatedAt.IsZero() {
				open = append(open, Item{Text: fmt.Sprintf("#%d · %s: ", im.ID, p.Name), Quote: truncateRunes(im.Text, 200),
					Buttons: []Button{{Label: "Validate", Action: Action{Kind: ActValidate, Value: fmt.Sprint(im.ID)}}}})
			}
		}
	}
	if len(open) == 0 {
		return false
	}
	pages(len(open))
	from, to, more := pageOf(len(open), page)
	list := &List{Title: "Outcomes to validate", Items: open[from:to]}
	if more {
		list.More = fmt.Sprintf("…and %d more.", len(open)-to)
	}
	r.Blocks = append(r.Blocks, &Divider{}, list)
	return more
}

func (h *Handler) admin(ctx context.Context, actor ledger.Person, cmd Command) Reply {
	if !h.Policy.IsAdmin(actor.Email) {
		return textReply("Admin commands are for the admins named in the policy. Ask one of them if you need a grant or a report.")
	}
	sub := ""
	if len(cmd.Args) > 0 {
		sub = strings.ToLower(cmd.Args[0])
	}
	switch sub {
	case "grant":
		return h.adminGrant(ctx, actor, cmd.Args[1:])
	case "report":
		return h.adminReport(ctx)
	}
	if f, ok := h.Extra["admin "+sub]; ok {
		return f(ctx, actor, ParseCommand(strings.TrimSpace(strings.TrimPrefix(cmd.Rest, cmd.Args[0]))))
	}
	return textReply("Admin commands: /tokens admin grant <email> <amount> <reason>, /tokens admin report.")
}

func (h *Handler) adminGrant(ctx context.Context, actor ledger.Person, args []string) Reply {
	const usage = "Usage: /tokens admin grant <email> <amount> <reason>"
	if len(args) < 2 {
		return textReply("%s", usage)
	}
	amountText, reason := splitAmount(strings.Join(args[1:], " "))
	amount, err := ledger.ParseAmount(amountText)
	if err != nil {
		return textReply("%s\n%s", capitalise(ledger.ErrorMessage(err)), usage)
	}
	if reason == "" {
		return textReply("Say why: the reason is kept in the ledger and the person sees it.\n%s", usage)
	}
	reason, ok := cleanText(reason, maxNote)
	if !ok {
		return textReply("A reason can be at most %s characters.\n%s", credits(maxNote), usage)
	}
	p, err := h.Store.PersonByEmail(ctx, args[0])
	if err != nil {
		return h.fail(err, "admin grant")
	}
	if p.ID == actor.ID && amount > h.Policy.Unlock.ManagerLimit {
		// Separation of duties, as for requests: above the manager limit a second admin
		// makes the grant.
		var others []string
		for _, a := range h.admins(ctx) {
			if a.ID != actor.ID {
				others = append(others, a.Name)
			}
		}
		if len(others) == 0 {
			return textReply("A grant to yourself above %s credits needs a second admin, and the policy names no other. Grant at most %s, or have a second admin added to the policy.",
				credits(h.Policy.Unlock.ManagerLimit), credits(h.Policy.Unlock.ManagerLimit))
		}
		return textReply("A grant to yourself above %s credits needs a second admin: ask %s to run /tokens admin grant %s %s %s.",
			credits(h.Policy.Unlock.ManagerLimit), strings.Join(others, " or "), actor.Email, credits(amount), reason)
	}
	_, end := h.period()
	// Each command is a new grant: a chat command carries no id to retry it by, and the
	// clock may stand still (TOKENPAY_NOW), so the key must not come from the time.
	g, err := h.Store.Grant(ctx, ledger.GrantInput{Key: fmt.Sprintf("chat-grant:%d:%s", actor.ID, rand.Text()), PersonID: p.ID,
		Kind: ledger.GrantAdjustment, Amount: amount, ExpiresAt: end, Reason: reason, Actor: actor.Email})
	if err != nil {
		return h.fail(err, "admin grant")
	}
	if err := h.Store.Audit(ctx, actor.Email, "grant", p.Email, fmt.Sprintf("%s credits: %s", ledger.FormatCredits(amount), reason)); err != nil {
		return h.fail(err, "admin grant")
	}
	h.tell(ctx, p, textReply("%s granted you %s credits: %s", actor.Name, credits(g.Amount), reason))
	return textReply("Granted %s credits to %s until the end of the period.", credits(g.Amount), p.Name)
}

func (h *Handler) adminReport(ctx context.Context) Reply {
	start, end := h.period()
	stats, err := h.Store.TeamStats(ctx, start, end)
	if err != nil {
		return h.fail(err, "admin report")
	}
	list := &List{Items: []Item{{Text: "team · people · granted per head · used · approval rate"}}}
	for _, s := range stats {
		rate := "no decisions"
		if s.Approved+s.Denied > 0 {
			rate = fmt.Sprintf("%d%%", s.Approved*100/(s.Approved+s.Denied))
		}
		perHead := int64(0)
		if s.People > 0 {
			perHead = s.Granted / int64(s.People)
		}
		list.Items = append(list.Items, Item{Text: fmt.Sprintf("%s · %d · %s · %s · %s", s.Team, s.People, credits(perHead), credits(s.Spent), rate)})
	}
	return Reply{Header: "Allocation and use this period", Blocks: []Block{list,
		&Context{Text: "The monthly admin report adds access fairness (Gini), hoarding and the lift nudges cause."}}}
}
