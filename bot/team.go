package bot

import (
	"context"
	"crypto/rand"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// team shows a manager their reports' usage (alphabetical, never ranked), the requests
// they may decide and outcomes to validate.
func (h *Handler) team(ctx context.Context, actor ledger.Person) Reply {
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
	if len(reports) > 0 {
		var lines []string
		for _, p := range reports {
			b, err := h.Store.Balance(ctx, p.ID, start, end)
			if err != nil {
				return h.fail(err, "team")
			}
			ims, err := h.Store.Impacts(ctx, p.ID, start, 100)
			if err != nil {
				return h.fail(err, "team")
			}
			used := b.Spent - b.Overage
			bar := (&Progress{Value: used, Max: used + b.Available}).Bar(10)
			lines = append(lines, fmt.Sprintf("%s  %s  · %s of %s credits · %s logged", bar, p.Name, credits(b.Spent), credits(used+b.Available), plural(len(ims), "outcome")))
		}
		r.Blocks = append(r.Blocks, &Text{Text: strings.Join(lines, "\n")},
			&Context{Text: "Low use is a chance to help, not a problem: share a prompt that worked for you, or point them to /tokens learn."})
		// Requests are filed to the manager of the day, so they are found by approver.
		pending, err := h.Store.PendingRequests(ctx, actor.ID)
		if err != nil {
			return h.fail(err, "team")
		}
		h.appendPending(ctx, &r, pending)
		h.appendImpacts(ctx, &r, reports, start)
	}
	if isAdmin {
		all, err := h.Store.PendingRequests(ctx)
		if err != nil {
			return h.fail(err, "team")
		}
		var adminQueue []ledger.Request
		for _, q := range all {
			if q.RequesterID != actor.ID && (q.ApproverID == 0 || (q.NeedsAdmin && q.AdminApproval == 0)) && q.ApproverID != actor.ID {
				adminQueue = append(adminQueue, q)
			}
		}
		switch {
		case len(adminQueue) > 0:
			r.Blocks = append(r.Blocks, &Divider{}, &Text{Text: "*Waiting for an admin*"})
			h.appendPending(ctx, &r, adminQueue)
		case len(reports) == 0:
			r.Blocks = append(r.Blocks, &Context{Text: "No requests are waiting for an admin."})
		}
	}
	return r
}

// maxListed keeps a team view within platform message limits.
const maxListed = 10

func (h *Handler) appendPending(ctx context.Context, r *Reply, pending []ledger.Request) {
	if len(pending) == 0 {
		r.Blocks = append(r.Blocks, &Context{Text: "No requests waiting for you."})
		return
	}
	r.Blocks = append(r.Blocks, &Divider{}, &Text{Text: fmt.Sprintf("*%s waiting for a decision*", plural(len(pending), "request"))})
	for i, q := range pending {
		if i == maxListed {
			r.Blocks = append(r.Blocks, &Context{Text: fmt.Sprintf("…and %d more.", len(pending)-maxListed)})
			break
		}
		p, err := h.Store.PersonByID(ctx, q.RequesterID)
		if err != nil {
			continue
		}
		id := fmt.Sprint(q.ID)
		r.Blocks = append(r.Blocks,
			&Text{Text: fmt.Sprintf("#%d · %s asks for %s credits: %s", q.ID, p.Name, credits(q.Amount), truncateRunes(q.UseCase, 300))},
			&Buttons{Buttons: []Button{
				{Label: "Approve", Action: Action{Kind: ActApprove, Value: id}, Style: StylePrimary},
				{Label: "Deny", Action: Action{Kind: ActDeny, Value: id}, Style: StyleDanger},
				{Label: "Ask", Action: Action{Kind: ActAsk, Value: id}},
			}})
	}
}

func (h *Handler) appendImpacts(ctx context.Context, r *Reply, reports []ledger.Person, since time.Time) {
	var open []string
	var buttons []Button
	for _, p := range reports {
		ims, err := h.Store.Impacts(ctx, p.ID, since, 20)
		if err != nil {
			continue
		}
		for _, im := range ims {
			if im.ValidatedAt.IsZero() && len(buttons) < maxListed {
				open = append(open, fmt.Sprintf("#%d · %s: %s", im.ID, p.Name, truncateRunes(im.Text, 200)))
				buttons = append(buttons, Button{Label: fmt.Sprintf("Validate #%d", im.ID), Action: Action{Kind: ActValidate, Value: fmt.Sprint(im.ID)}})
			}
		}
	}
	if len(open) == 0 {
		return
	}
	r.Blocks = append(r.Blocks, &Divider{}, &Text{Text: "*Outcomes to validate*\n" + strings.Join(open, "\n")})
	for start := 0; start < len(buttons); start += 5 {
		r.Blocks = append(r.Blocks, &Buttons{Buttons: buttons[start:min(start+5, len(buttons))]})
	}
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
	_, end := h.period()
	// Each command is a new grant: a chat command carries no id to retry it by, and the
	// clock may stand still (TOKENPAY_NOW), so the key must not come from the time.
	g, err := h.Store.Grant(ctx, sqlite.GrantInput{Key: fmt.Sprintf("chat-grant:%d:%s", actor.ID, rand.Text()), PersonID: p.ID,
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
	lines := []string{"team · people · granted per head · used · approval rate"}
	for _, s := range stats {
		rate := "no decisions"
		if s.Approved+s.Denied > 0 {
			rate = fmt.Sprintf("%d%%", s.Approved*100/(s.Approved+s.Denied))
		}
		perHead := int64(0)
		if s.People > 0 {
			perHead = s.Granted / int64(s.People)
		}
		lines = append(lines, fmt.Sprintf("%s · %d · %s · %s · %s", s.Team, s.People, credits(perHead), credits(s.Spent), rate))
	}
	return Reply{Header: "Allocation and use this period", Blocks: []Block{&Text{Text: strings.Join(lines, "\n")},
		&Context{Text: "The monthly admin report adds access fairness (Gini), hoarding and the lift nudges cause."}}}
}
