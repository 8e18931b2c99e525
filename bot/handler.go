package bot

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// Handler answers every command and action, whatever the platform.
type Handler struct {
	Store  ledger.Store
	Policy *policy.Policy
	Now    func() time.Time
	Log    zerolog.Logger
	Notify Notifier
	// Extra holds commands added by other packages (prompts, learn, share), by name.
	Extra map[string]CommandFunc
	// ExtraHelp is the help line of each extra command, by the same name ("usage: what it does").
	ExtraHelp map[string]string
	// ExtraActions handles action kinds the core does not know.
	ExtraActions func(ctx context.Context, actor ledger.Person, a Action, form map[string]string) (Reply, bool)
	// ExtraForms returns the form an extension's action opens for anyone (see Form).
	ExtraForms func(a Action) (*Modal, bool)
	// ExtraCommandForms returns the form an extension's command opens (see CommandForm),
	// with the action that opens it again; by command name.
	ExtraCommandForms map[string]func(cmd Command) (*Modal, Action)
}

// CommandFunc answers one extra command.
type CommandFunc func(ctx context.Context, actor ledger.Person, cmd Command) Reply

// Limits on what people type.
const (
	maxUseCase = 1000
	maxImpact  = 1000
	maxNote    = 500
)

// Command answers a line of command text from actor. It never fails: problems become a
// sentence that says what to do, and internal errors are logged.
func (h *Handler) Command(ctx context.Context, actor ledger.Person, text string) Reply {
	if len(text) > MaxCommandBytes {
		return textReply("That is too long for one command (at most %d characters). Shorten it and try again.", MaxCommandBytes)
	}
	cmd := ParseCommand(text)
	switch cmd.Name {
	case "balance", "bal":
		return h.balance(ctx, actor)
	case "history":
		return h.history(ctx, actor)
	case "request":
		return h.request(ctx, actor, cmd)
	case "cancel":
		return h.cancel(ctx, actor, cmd)
	case "impact":
		return h.impact(ctx, actor, cmd)
	case "nudges", "digests":
		return h.optOut(ctx, actor, cmd)
	case "team":
		return h.team(ctx, actor, 0)
	case "admin":
		return h.admin(ctx, actor, cmd)
	case "help", "?":
		return h.help()
	}
	if f, ok := h.Extra[cmd.Name]; ok {
		return f(ctx, actor, cmd)
	}
	if s := suggest(cmd.Name, h.commandNames()); s != "" {
		return textReply("I don't know the command %q. Did you mean %s? Type /tokens %s, or /tokens help for everything I can do.",
			truncateRunes(cmd.Name, 40), s, strings.TrimSpace(s+" "+cmd.Rest))
	}
	r := h.help()
	r.Blocks = append([]Block{&Text{Text: fmt.Sprintf("I don't know the command %q. Here is what I can do:", truncateRunes(cmd.Name, 40))}}, r.Blocks...)
	return r
}

// commandNames are the words Command understands, for "did you mean".
func (h *Handler) commandNames() []string {
	names := []string{"balance", "history", "request", "cancel", "impact", "nudges", "digests", "team", "admin", "help"}
	for n := range h.Extra {
		if !strings.Contains(n, " ") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Act performs a button press or form submission. form is nil for a button press; an
// action that needs input answers with a Modal, and submitting it calls Act again with
// the form.
func (h *Handler) Act(ctx context.Context, actor ledger.Person, a Action, form map[string]string) Reply {
	if form == nil {
		if m, ok := h.coreForm(a); ok {
			return Reply{Modal: m}
		}
	} else if r, ok := h.checkForm(a, form); !ok {
		return r
	}
	switch a.Kind {
	case ActApprove:
		return h.decide(ctx, actor, a.ID(), true, "")
	case ActDeny:
		return h.decide(ctx, actor, a.ID(), false, form["reason"])
	case ActAsk:
		return h.ask(ctx, actor, a.ID(), form["question"])
	case ActCancel:
		return h.cancelRequest(ctx, actor, a.ID())
	case ActValidate:
		return h.validate(ctx, actor, a.ID())
	case ActSubmitRequest:
		return h.fileRequest(ctx, actor, form["amount"], form["use_case"])
	case ActSubmitImpact:
		rest := form["text"]
		if h := strings.TrimSpace(form["hours"]); h != "" {
			rest += " --hours " + h
		}
		if l := strings.TrimSpace(form["link"]); l != "" {
			rest += " --link " + l
		}
		return h.impact(ctx, actor, Command{Name: "impact", Rest: rest, Args: strings.Fields(rest)})
	case ActNudgesOff:
		return h.optOut(ctx, actor, Command{Name: "nudges", Args: []string{"off"}})
	case ActBalance:
		return h.balance(ctx, actor)
	case ActTeam:
		return h.team(ctx, actor, int(min(a.ID(), maxTeamPage)))
	}
	if h.ExtraActions != nil {
		if r, ok := h.ExtraActions(ctx, actor, a, form); ok {
			return r
		}
	}
	return textReply("That button is no longer supported. Type /tokens help to see what you can do.")
}

// fail turns an error into a reply: user-safe messages as they are, internal errors logged.
func (h *Handler) fail(err error, what string) Reply {
	if ledger.ErrorCode(err) == ledger.Internal {
		h.Log.Error().Err(err).Str("op", what).Msg("command failed")
	}
	return textReply("%s", ledger.ErrorMessage(err))
}

func (h *Handler) period() (time.Time, time.Time) {
	now := h.Now()
	return h.Policy.PeriodStart(now), h.Policy.PeriodEnd(now)
}

func (h *Handler) daysLeft() int {
	_, end := h.period()
	d := end.Sub(h.Now())
	return int((d + 24*time.Hour - 1) / (24 * time.Hour))
}

func credits(n int64) string { return ledger.FormatCredits(n) }

func (h *Handler) balance(ctx context.Context, actor ledger.Person) Reply {
	start, end := h.period()
	b, err := h.Store.Balance(ctx, actor.ID, start, end)
	if err != nil {
		return h.fail(err, "balance")
	}
	used := b.Spent - b.Overage
	total := used + b.Available
	r := Reply{Header: "Your AI token allowance", Blocks: []Block{
		&Fields{Fields: []Field{
			{Label: "Available", Value: credits(b.Available) + " credits"},
			{Label: "Used this period", Value: credits(b.Spent) + " credits"},
			{Label: "Resets in", Value: plural(h.daysLeft(), "day")},
		}},
		&Progress{Label: fmt.Sprintf("%s of %s credits used this period", credits(used), credits(total)), Value: used, Max: total},
	}}
	if parts := h.allowanceParts(ctx, actor.ID, start, end); parts.sum == total && len(parts.text) > 0 {
		r.Blocks = append(r.Blocks, &Context{Text: fmt.Sprintf("Your %s this period: %s.", credits(total), strings.Join(parts.text, " + "))})
	}
	if b.Overage > 0 {
		r.Blocks = append(r.Blocks, &Context{Text: fmt.Sprintf("You used %s credits beyond your allowance. That is fine and recorded; if the work needs more, ask for an unlock.", credits(b.Overage))})
	}
	r.Blocks = append(r.Blocks,
		&Context{Text: "Need more for a real use case? Request an unlock: /tokens request <amount> <use case>. Your manager approves with one click."},
		&Buttons{Buttons: []Button{
			{Label: "Request more", Action: Action{Kind: ActOpenRequest}, Style: StylePrimary},
			{Label: "Log impact", Action: Action{Kind: ActOpenImpact}},
		}})
	return r
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%s %ss", credits(int64(n)), word)
}

// periodGrants is what a person was granted in a period, by kind, in words.
type periodGrants struct {
	text     []string // "400,000 baseline", "100,000 carried over from last period", …
	sum      int64
	rollover int64
	baseline int64
}

// allowanceParts says what a period's allowance is made of, from the grants that took
// effect in it, so "of 500,000" can be explained.
func (h *Handler) allowanceParts(ctx context.Context, personID int64, start, end time.Time) periodGrants {
	gs, err := h.Store.Grants(ctx, personID, 500)
	if err != nil {
		h.Log.Warn().Err(err).Int64("person", personID).Msg("grants for the allowance breakdown")
		return periodGrants{}
	}
	byKind := map[ledger.GrantKind]int64{}
	var out periodGrants
	for _, g := range gs {
		if g.EffectiveAt.Before(start) || !g.EffectiveAt.Before(end) {
			continue
		}
		byKind[g.Kind] += g.Amount
		out.sum += g.Amount
	}
	out.rollover, out.baseline = byKind[ledger.GrantRollover], byKind[ledger.GrantBaseline]
	for _, k := range []struct {
		kind ledger.GrantKind
		what string
	}{{ledger.GrantBaseline, "baseline"}, {ledger.GrantRollover, "carried over from last period"}, {ledger.GrantUnlock, "unlocked"},
		{ledger.GrantLesson, "from lessons"}, {ledger.GrantAdjustment, "granted by an admin"}} {
		if n := byKind[k.kind]; n > 0 {
			out.text = append(out.text, credits(n)+" "+k.what)
		}
	}
	return out
}

func (h *Handler) history(ctx context.Context, actor ledger.Person) Reply {
	acts, err := h.Store.History(ctx, actor.ID, 15)
	if err != nil {
		return h.fail(err, "history")
	}
	if len(acts) == 0 {
		return textReply("Nothing yet: your grants and spending will show here.")
	}
	loc := h.Policy.Location()
	list := &List{}
	for _, a := range acts {
		sign := ""
		if a.Amount > 0 {
			sign = "+"
		}
		label := map[string]string{ledger.TxGrant: "granted", ledger.TxUsage: "used", ledger.TxReset: "period closed",
			ledger.TxReversal: "correction", ledger.TxReallocate: "reallocated"}[a.Kind]
		reason := a.Reason
		if a.Kind == ledger.TxUsage {
			reason = "model " + reason
		}
		// The reason may quote a use case a person typed.
		list.Items = append(list.Items, Item{Text: fmt.Sprintf("%s  %s%s  %s · ", a.At.In(loc).Format("2 Jan 15:04"), sign, credits(a.Amount), label), Quote: reason})
	}
	r := Reply{Header: "Your recent activity", Blocks: []Block{list}}
	// The period's opening grants are often older than the latest activity: say what was
	// carried in, so the history explains the balance.
	start, end := h.period()
	if parts := h.allowanceParts(ctx, actor.ID, start, end); len(parts.text) > 0 {
		opened := fmt.Sprintf("This period began on %s.", start.In(loc).Format("2 Jan"))
		if parts.rollover > 0 {
			opened = fmt.Sprintf("This period began on %s with %s credits carried over from the last period, on top of the %s baseline.",
				start.In(loc).Format("2 Jan"), credits(parts.rollover), credits(parts.baseline))
		}
		r.Blocks = append(r.Blocks, &Context{Text: opened + " Granted this period: " + strings.Join(parts.text, " + ") + "."})
	}
	return r
}

func (h *Handler) requestModal() *Modal {
	return &Modal{Title: "Request more tokens", Submit: "Send request", Action: Action{Kind: ActSubmitRequest},
		Intro: "Tell your manager what you want to do and what it will change. They approve with one click.",
		Inputs: []Input{
			{ID: "amount", Label: "How many credits?", Placeholder: "50000 or 50k"},
			{ID: "use_case", Label: "Use case and expected impact", Placeholder: "Summarise 40 customer interviews for the Q3 research readout; saves about two days", Multiline: true, MaxLength: maxUseCase},
		}}
}

func (h *Handler) request(ctx context.Context, actor ledger.Person, cmd Command) Reply {
	if len(cmd.Args) == 0 {
		return Reply{Modal: h.requestModal()}
	}
	amount, useCase := splitAmount(cmd.Rest)
	return h.fileRequest(ctx, actor, amount, useCase)
}

func (h *Handler) fileRequest(ctx context.Context, actor ledger.Person, amountText, useCase string) Reply {
	const usage = "Usage: /tokens request <amount> <use case>, e.g. /tokens request 50k summarise the customer interviews for the research readout"
	amount, err := ledger.ParseAmount(amountText)
	tooLarge := errors.Is(err, ledger.ErrAmountTooLarge) || (err == nil && amount > h.Policy.Unlock.MaxRequest)
	if tooLarge {
		return textReply("One request can ask for at most %s credits. Ask for less, or talk to an admin about a larger grant.", credits(h.Policy.Unlock.MaxRequest))
	}
	if err != nil {
		return textReply("%s\n%s", capitalise(ledger.ErrorMessage(err)), usage)
	}
	useCase = strings.TrimSpace(useCase)
	if n := utf8.RuneCountInString(useCase); n > maxUseCase {
		return textReply("A use case can be at most %s characters; yours has %s. Shorten it and send the request again.", credits(maxUseCase), credits(int64(n)))
	}
	useCase, ok := cleanText(useCase, maxUseCase)
	if !ok {
		return textReply("Describe the use case (up to %s characters) so your manager can approve it.\n%s", credits(maxUseCase), usage)
	}
	needsAdmin := amount > h.Policy.Unlock.ManagerLimit
	if why := h.approvable(ctx, actor, amount); why != "" {
		return textReply("%s", why)
	}
	req, err := h.Store.CreateRequest(ctx, ledger.RequestInput{RequesterID: actor.ID, ApproverID: actor.ManagerID, Amount: amount,
		UseCase: useCase, NeedsAdmin: needsAdmin, ExpiresAt: h.Now().Add(h.Policy.Unlock.ExpiresAfter), MaxPending: h.Policy.Unlock.MaxPending})
	var open *ledger.OpenRequestsError
	if errors.As(err, &open) {
		return h.openRequests(open)
	}
	if err != nil {
		return h.fail(err, "file request")
	}
	view, err := h.view(ctx, req)
	if err != nil {
		return h.fail(err, "file request")
	}
	h.notifyApprovers(ctx, view)
	who := "an admin"
	if view.Approver.ID != 0 {
		who = view.Approver.Name
	}
	extra := ""
	if needsAdmin {
		extra = fmt.Sprintf(" It is above %s credits, so an admin approves too.", credits(h.Policy.Unlock.ManagerLimit))
	}
	return Reply{Blocks: []Block{
		&Text{Text: fmt.Sprintf("Request #%d for %s credits sent to %s.%s You will hear back here.", req.ID, credits(amount), who, extra)},
		&Context{Text: "Use case: " + useCase},
		&Buttons{Buttons: []Button{{Label: "Cancel request", Action: Action{Kind: ActCancel, Value: fmt.Sprint(req.ID)}}}},
	}}
}

// openRequests answers a request that was not filed because of the ones already open: the
// duplicate is pointed to, or the open ones are listed with a way to withdraw one.
func (h *Handler) openRequests(e *ledger.OpenRequestsError) Reply {
	loc := h.Policy.Location()
	if d := e.Duplicate; d != nil {
		return Reply{Blocks: []Block{
			&Text{Text: fmt.Sprintf("You already asked for this: request #%d for %s credits, filed %s, is still waiting for a decision. No new request was filed.",
				d.ID, credits(d.Amount), d.CreatedAt.In(loc).Format("2 Jan 15:04"))},
			&Context{Text: fmt.Sprintf("To change the amount, cancel it (/tokens cancel %d) and file it again.", d.ID)},
			&Buttons{Buttons: []Button{{Label: fmt.Sprintf("Cancel request #%d", d.ID), Action: Action{Kind: ActCancel, Value: fmt.Sprint(d.ID)}}}},
		}}
	}
	var lines []string
	var buttons []Button
	for _, q := range e.Open {
		lines = append(lines, fmt.Sprintf("#%d · %s credits · %s", q.ID, credits(q.Amount), truncateRunes(q.UseCase, 80)))
		buttons = append(buttons, Button{Label: fmt.Sprintf("Cancel #%d", q.ID), Action: Action{Kind: ActCancel, Value: fmt.Sprint(q.ID)}})
	}
	return Reply{Blocks: []Block{
		&Text{Text: fmt.Sprintf("You already have %s waiting for a decision, the most one person may have open at once. No new request was filed.", plural(len(e.Open), "request"))},
		&Text{Text: strings.Join(lines, "\n")},
		&Context{Text: "Wait for a decision, or cancel one (/tokens cancel <number>) to file another."},
		&Buttons{Buttons: buttons[:min(len(buttons), 5)]},
	}}
}

// capitalise starts a sentence with a capital letter.
func capitalise(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[size:]
}

func (h *Handler) cancel(ctx context.Context, actor ledger.Person, cmd Command) Reply {
	if len(cmd.Args) != 1 {
		return textReply("Usage: /tokens cancel <request number>")
	}
	a, ok := ParseAction("cancel:" + strings.TrimPrefix(cmd.Args[0], "#"))
	if !ok {
		return textReply("%q is not a request number. Usage: /tokens cancel <request number>", truncateRunes(cmd.Args[0], 20))
	}
	return h.cancelRequest(ctx, actor, a.ID())
}

func (h *Handler) cancelRequest(ctx context.Context, actor ledger.Person, id int64) Reply {
	req, changed, err := h.Store.CancelRequest(ctx, id, actor.ID)
	if ledger.ErrorCode(err) == ledger.NotFound {
		return textReply("There is no request #%d. The number is in the message that confirmed your request (\"Request #12 for …\").", id)
	}
	if err != nil {
		return h.fail(err, "cancel request")
	}
	if req.RequesterID != actor.ID {
		return textReply("Only the person who filed request #%d can cancel it.", id)
	}
	if !changed {
		return textReply("Request #%d is already %s.", id, req.Status)
	}
	if view, err := h.view(ctx, req); err == nil {
		h.notifyApprovers(ctx, view)
	}
	return textReply("Request #%d is cancelled.", id)
}

func (h *Handler) impact(ctx context.Context, actor ledger.Person, cmd Command) Reply {
	if strings.TrimSpace(cmd.Rest) == "" {
		m, _ := h.coreForm(Action{Kind: ActOpenImpact})
		return Reply{Modal: m}
	}
	text, minutes, link, problem := impactText(cmd.Rest)
	const usage = "Usage: /tokens impact <what happened> [--hours N] [--link URL], e.g. /tokens impact drafted the board memo in one hour --hours 3"
	if problem != "" {
		return textReply("%s\n%s", problem, usage)
	}
	text, ok := cleanText(text, maxImpact)
	if !ok {
		return textReply("Say what happened (up to %s characters).\n%s", credits(maxImpact), usage)
	}
	im, err := h.Store.LogImpact(ctx, actor.ID, text, minutes, link)
	if err != nil {
		return h.fail(err, "log impact")
	}
	saved := ""
	if minutes > 0 {
		saved = fmt.Sprintf(" (%s saved)", hours(minutes))
	}
	return Reply{Blocks: []Block{
		&Text{Text: fmt.Sprintf("Logged impact #%d%s. Thank you: outcomes like this are what unlock more for you and your team.", im.ID, saved)},
		&Context{Text: text},
	}}
}

func hours(minutes int64) string {
	if minutes%60 == 0 {
		return plural(int(minutes/60), "hour")
	}
	return fmt.Sprintf("%.1f hours", float64(minutes)/60)
}

func (h *Handler) optOut(ctx context.Context, actor ledger.Person, cmd Command) Reply {
	if len(cmd.Args) != 1 || (cmd.Args[0] != "on" && cmd.Args[0] != "off") {
		return textReply("Usage: /tokens %s on|off", cmd.Name)
	}
	off := cmd.Args[0] == "off"
	nudgesOff, digestsOff := actor.NudgesOff, actor.DigestsOff
	if cmd.Name == "nudges" {
		nudgesOff = off
	} else {
		digestsOff = off
	}
	if err := h.Store.SetNudges(ctx, actor.ID, nudgesOff, digestsOff); err != nil {
		return h.fail(err, "set nudges")
	}
	switch {
	case cmd.Name == "nudges" && off:
		return textReply("Nudges are off. Your weekly digest stays; turn it off with /tokens digests off.")
	case cmd.Name == "nudges":
		return textReply("Nudges are on: at most one a week, never in your quiet hours.")
	case off:
		return textReply("Weekly digests are off. Turn them back on with /tokens digests on.")
	}
	return textReply("Weekly digests are on.")
}

func (h *Handler) help() Reply {
	cmds := [][2]string{
		{"/tokens* or */tokens balance", "your allowance, what you used, days to reset"},
		{"/tokens history", "your latest grants and spending"},
		{"/tokens request <amount> <use case>", "ask your manager for more (no arguments opens a form)"},
		{"/tokens cancel <request number>", "withdraw a pending request"},
		{"/tokens impact <what happened> [--hours N] [--link URL]", "log an outcome"},
		{"/tokens nudges on|off*, */tokens digests on|off", "choose what the bot sends you"},
		{"/tokens team", "for managers, your team's usage, pending requests and outcomes"},
	}
	names := make([]string, 0, len(h.Extra))
	for n := range h.Extra {
		names = append(names, n)
	}
	sort.Strings(names)
	admin := []string{"*/tokens admin grant <email> <amount> <reason>*", "*/tokens admin report*"}
	for _, n := range names {
		usage, what, _ := strings.Cut(h.ExtraHelp[n], ": ")
		if usage == "" {
			usage = n
		}
		if strings.HasPrefix(n, "admin ") {
			admin = append(admin, "*/tokens "+usage+"*")
			continue
		}
		cmds = append(cmds, [2]string{"/tokens " + usage, what})
	}
	list := &List{}
	for _, c := range cmds {
		line := "*" + c[0] + "*"
		if c[1] != "" {
			line += ": " + c[1]
		}
		list.Items = append(list.Items, Item{Text: line})
	}
	list.Items = append(list.Items, Item{Text: strings.Join(admin, ", ") + ": for admins"})
	return Reply{Header: "tokenpay: AI tokens as a capability to grow", Blocks: []Block{list}}
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
