package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tokenpay/tokenpay/ledger"
)

// Notifier delivers what the core decides to send outside the current conversation. Each
// platform implements it; Router picks the platform a person last used.
type Notifier interface {
	// Approval posts the approval message of a request to its deciders the first time and
	// updates it in place afterwards (same request id).
	Approval(ctx context.Context, v RequestView) error
	// Direct sends one person a private message.
	Direct(ctx context.Context, to ledger.Person, r Reply) error
}

// RequestView is a request with the people around it and the message deciders see.
type RequestView struct {
	Request   ledger.Request
	Requester ledger.Person
	Approver  ledger.Person   // zero when the requester has no manager
	Deciders  []ledger.Person // who may act on it now (manager side, or admins)
	Decider   ledger.Person   // who decided, once decided
	// About is the requester's use, requests and outcomes, shown to deciders.
	About   RequesterContext
	Message Reply // details, context and buttons while pending; the outcome after
}

func (h *Handler) view(ctx context.Context, req ledger.Request) (RequestView, error) {
	v := RequestView{Request: req}
	var err error
	if v.Requester, err = h.Store.PersonByID(ctx, req.RequesterID); err != nil {
		return v, err
	}
	if req.ApproverID != 0 {
		if v.Approver, err = h.Store.PersonByID(ctx, req.ApproverID); err != nil {
			return v, err
		}
	}
	if req.DecidedBy != 0 {
		if v.Decider, err = h.Store.PersonByID(ctx, req.DecidedBy); err != nil {
			return v, err
		}
	}
	needManager := req.ApproverID != 0 && req.ManagerApproval == 0
	needAdmin := req.ApproverID == 0 || (req.NeedsAdmin && req.AdminApproval == 0)
	if needManager {
		v.Deciders = append(v.Deciders, v.Approver)
	}
	if needAdmin {
		for _, p := range h.admins(ctx) {
			// Whoever gave the first approval cannot give the second (separation of duties).
			if p.ID != req.RequesterID && p.ID != req.ManagerApproval && p.ID != req.AdminApproval {
				v.Deciders = append(v.Deciders, p)
			}
		}
	}
	if v.About, err = h.requesterContext(ctx, req); err != nil {
		return v, err
	}
	v.Message = h.approvalMessage(v)
	return v, nil
}

// approvalMessage is what deciders see: the request and its buttons while pending, the
// outcome once decided.
func (h *Handler) approvalMessage(v RequestView) Reply {
	req := v.Request
	loc := h.Policy.Location()
	r := Reply{Public: true, Header: fmt.Sprintf("Request #%d: %s credits for %s", req.ID, credits(req.Amount), v.Requester.Name)}
	fields := []Field{{Label: "From", Value: fmt.Sprintf("%s (%s)", v.Requester.Name, v.Requester.Team)}, {Label: "Amount", Value: credits(req.Amount) + " credits"}}
	if req.NeedsAdmin {
		fields = append(fields, Field{Label: "Approvals", Value: approvalsNeeded(req)})
	}
	r.Blocks = append(r.Blocks, &List{Title: "Use case", Items: []Item{{Quote: req.UseCase}}}, &Fields{Fields: fields})
	if req.Status == ledger.RequestPending {
		r.Summary = requestSummary(v.Requester.Name, req)
		r.Blocks = append(r.Blocks, contextBlocks(v.Requester.Name, v.About)...)
	}
	id := fmt.Sprint(req.ID)
	switch req.Status {
	case ledger.RequestPending:
		r.Blocks = append(r.Blocks,
			&Context{Text: fmt.Sprintf("Filed %s · expires %s", req.CreatedAt.In(loc).Format("2 Jan 15:04"), req.ExpiresAt.In(loc).Format("2 Jan 15:04 MST"))},
			&Buttons{Buttons: []Button{
				{Label: "Approve", Action: Action{Kind: ActApprove, Value: id}, Style: StylePrimary},
				{Label: "Deny", Action: Action{Kind: ActDeny, Value: id}, Style: StyleDanger},
				{Label: "Ask for details", Action: Action{Kind: ActAsk, Value: id}},
			}})
	default:
		r.Blocks = append(r.Blocks, &Context{Text: h.outcome(v)})
	}
	return r
}

func approvalsNeeded(req ledger.Request) string {
	mgr, adm := "manager: waiting", "admin: waiting"
	if req.ApproverID == 0 {
		// No manager on file: two different admins approve.
		mgr, adm = "first admin: waiting", "second admin: waiting"
		if req.ManagerApproval != 0 {
			mgr = "first admin: done"
		}
		if req.AdminApproval != 0 {
			adm = "second admin: done"
		}
		return mgr + " · " + adm
	}
	if req.ManagerApproval != 0 {
		mgr = "manager: done"
	}
	if req.AdminApproval != 0 {
		adm = "admin: done"
	}
	return mgr + " · " + adm
}

// admins are the policy's admins who are in the directory and not forgotten.
func (h *Handler) admins(ctx context.Context) []ledger.Person {
	var out []ledger.Person
	for _, email := range h.Policy.Admins {
		if p, err := h.Store.PersonByEmail(ctx, email); err == nil && !p.Forgotten {
			out = append(out, p)
		}
	}
	return out
}

// approvable says why nobody could approve a request of requester's for amount, or "" when
// someone can: the manager (or a delegate) or an admin; above unlock.manager_limit two
// different people, neither the requester, one of them an admin (with no manager on file,
// two admins). A request nobody can approve is refused when filed, not left to expire.
func (h *Handler) approvable(ctx context.Context, requester ledger.Person, amount int64) string {
	var admins, firstSide []ledger.Person
	for _, p := range h.admins(ctx) {
		if p.ID != requester.ID {
			admins = append(admins, p)
		}
	}
	if requester.ManagerID != 0 {
		if m, err := h.Store.PersonByID(ctx, requester.ManagerID); err == nil && !m.Forgotten {
			firstSide = append(firstSide, m)
			for _, email := range h.Policy.DelegatesOf(m.Email) {
				if d, err := h.Store.PersonByEmail(ctx, email); err == nil && !d.Forgotten && d.ID != requester.ID {
					firstSide = append(firstSide, d)
				}
			}
		}
	} else {
		firstSide = admins
	}
	limit := credits(h.Policy.Unlock.ManagerLimit)
	if amount <= h.Policy.Unlock.ManagerLimit {
		if len(firstSide) == 0 && len(admins) == 0 {
			return "Nobody could approve this request: you have no manager in the directory and the policy names no admin besides you. Ask an admin to add a manager for you to the directory."
		}
		return ""
	}
	for _, m := range firstSide {
		for _, a := range admins {
			if m.ID != a.ID {
				return ""
			}
		}
	}
	switch {
	case len(admins) == 0:
		return fmt.Sprintf("Requests above %s credits need an admin's approval as well, and the policy names no admin besides you who could give it. "+
			"Ask for at most %s credits, or have a second admin added to the policy.", limit, limit)
	case requester.ManagerID == 0:
		return fmt.Sprintf("Requests above %s credits need two different admins to approve, neither of them you, and the policy names only one (%s). "+
			"Ask for at most %s credits, or have a second admin added to the policy.", limit, admins[0].Name, limit)
	default:
		return fmt.Sprintf("Requests above %s credits need two different people to approve, your manager's side and an admin, neither of them you; "+
			"the only admin who could is your manager, %s. Ask for at most %s credits, or have a second admin or a delegate added to the policy.", limit, admins[0].Name, limit)
	}
}

// outcome says who decided what and when.
func (h *Handler) outcome(v RequestView) string {
	req := v.Request
	at := req.DecidedAt.In(h.Policy.Location()).Format("2 Jan 2006 at 15:04 MST")
	switch req.Status {
	case ledger.RequestApproved:
		return fmt.Sprintf("✅ Approved by %s on %s", v.Decider.Name, at)
	case ledger.RequestDenied:
		s := fmt.Sprintf("Denied by %s on %s", v.Decider.Name, at)
		if req.Note != "" {
			s += ": " + req.Note
		}
		return s
	case ledger.RequestExpired:
		return "Expired on " + at + " without a decision"
	case ledger.RequestCancelled:
		return fmt.Sprintf("Cancelled by %s on %s", v.Requester.Name, at)
	}
	return string(req.Status)
}

// ApprovalMessage is the message deciders see for request id as it stands now: the
// request and its buttons while pending, the outcome after. Platforms redraw a card with
// it after a press. Only those who may decide the request (its manager, their delegates,
// admins) may see it. Errors: ledger NotFound for an unknown id, Forbidden for anyone
// else, or the store's.
func (h *Handler) ApprovalMessage(ctx context.Context, actor ledger.Person, id int64) (Reply, error) {
	req, err := h.Store.Request(ctx, id)
	if err != nil {
		return Reply{}, fmt.Errorf("approval message of request %d: %w", id, err)
	}
	v, err := h.view(ctx, req)
	if err != nil {
		return Reply{}, fmt.Errorf("approval message of request %d: %w", id, err)
	}
	if m, a := h.capacities(actor, v); !m && !a {
		return Reply{}, ledger.Errorf(ledger.Forbidden, "Only %s can see request #%d.", h.whoCanDecide(v), id)
	}
	return v.Message, nil
}

// RefreshApproval updates a request's approval messages in place to show what became of it.
// Clicks do that as they happen; the expiry job calls this, since nobody clicks on expiry.
func (h *Handler) RefreshApproval(ctx context.Context, req ledger.Request) error {
	if h.Notify == nil {
		return fmt.Errorf("refresh approval of request %d: %w", req.ID, ErrUnreachable)
	}
	v, err := h.view(ctx, req)
	if err != nil {
		return fmt.Errorf("refresh approval of request %d: %w", req.ID, err)
	}
	if err := h.Notify.Approval(ctx, v); err != nil {
		return fmt.Errorf("refresh approval of request %d: %w", req.ID, err)
	}
	return nil
}

func (h *Handler) notifyApprovers(ctx context.Context, v RequestView) {
	if h.Notify == nil {
		return
	}
	err := h.Notify.Approval(ctx, v)
	switch {
	case errors.Is(err, ErrUnreachable):
		h.Log.Info().Int64("request", v.Request.ID).Msg("no decider of this request is on a configured chat platform")
	case err != nil:
		h.Log.Error().Err(err).Int64("request", v.Request.ID).Msg("notify approvers")
	}
}

func (h *Handler) tell(ctx context.Context, to ledger.Person, r Reply) {
	if h.Notify == nil {
		return
	}
	if err := h.Notify.Direct(ctx, to, r); err != nil {
		h.Log.Error().Err(err).Int64("person", to.ID).Msg("direct message")
	}
}

// capacities says in which roles actor may decide req: never the requester; the manager
// or one of their delegates; any admin.
func (h *Handler) capacities(actor ledger.Person, v RequestView) (asManager, asAdmin bool) {
	if actor.ID == v.Request.RequesterID {
		return false, false
	}
	asAdmin = h.Policy.IsAdmin(actor.Email)
	asManager = v.Approver.ID != 0 && (actor.ID == v.Approver.ID || h.Policy.IsDelegate(v.Approver.Email, actor.Email))
	return asManager, asAdmin
}

func (h *Handler) whoCanDecide(v RequestView) string {
	if v.Approver.ID == 0 {
		return "an admin"
	}
	s := v.Approver.Name + " (the manager)"
	if d := h.Policy.DelegatesOf(v.Approver.Email); len(d) > 0 {
		s += ", their delegates"
	}
	return s + " or an admin"
}

func (h *Handler) decide(ctx context.Context, actor ledger.Person, id int64, approve bool, note string) Reply {
	req, err := h.Store.Request(ctx, id)
	if err != nil {
		return h.fail(err, "decide")
	}
	v, err := h.view(ctx, req)
	if err != nil {
		return h.fail(err, "decide")
	}
	if req.Status != ledger.RequestPending {
		return textReply("Request #%d was already decided: %s.", id, h.outcome(v))
	}
	asManager, asAdmin := h.capacities(actor, v)
	if actor.ID == req.RequesterID {
		return textReply("You can't decide your own request; %s can.", h.whoCanDecide(v))
	}
	if !asManager && !asAdmin {
		return textReply("Only %s can decide request #%d.", h.whoCanDecide(v), id)
	}
	note, ok := cleanText(note, maxNote)
	if !ok && note != "" {
		return textReply("A reason can be at most %d characters. Shorten it and try again.", maxNote)
	}
	// Unlocked credits last until the period ends, or unlock.min_validity when approved in
	// its last days.
	until := h.Policy.UnlockExpiry(h.Now())
	after, changed, err := h.Store.Decide(ctx, ledger.Decision{RequestID: id, DeciderID: actor.ID, Approve: approve,
		AsManager: asManager, AsAdmin: asAdmin, Note: note, GrantExpiresAt: until})
	if err != nil {
		return h.fail(err, "decide")
	}
	v, err = h.view(ctx, after)
	if err != nil {
		return h.fail(err, "decide")
	}
	if !changed {
		if after.Status == ledger.RequestPending {
			return textReply("You already approved request #%d; it is waiting for %s.", id, strings.ToLower(approvalsNeeded(after)))
		}
		return textReply("Request #%d was already decided: %s.", id, h.outcome(v))
	}
	h.notifyApprovers(ctx, v)
	switch after.Status {
	case ledger.RequestExpired:
		h.tell(ctx, v.Requester, textReply("Your request #%d for %s credits expired without a decision. File it again with /tokens request if you still need it.", id, credits(after.Amount)))
		return textReply("Request #%d expired on %s, before your decision. %s can file it again.", id,
			after.ExpiresAt.In(h.Policy.Location()).Format("2 Jan 15:04 MST"), v.Requester.Name)
	case ledger.RequestPending:
		return textReply("Approved on your side. Request #%d is above %s credits, so it now waits for %s.", id,
			credits(h.Policy.Unlock.ManagerLimit), strings.ToLower(approvalsNeeded(after)))
	case ledger.RequestApproved:
		h.tell(ctx, v.Requester, Reply{Blocks: []Block{
			&Text{Text: fmt.Sprintf("🎉 %s approved your request #%d: %s more credits, available now until %s.", actor.Name, id, credits(after.Amount),
				until.In(h.Policy.Location()).Format("2 Jan 2006 15:04 MST"))},
			&Context{Text: "When it pays off, log the outcome with /tokens impact: it helps your team learn what works."},
			&Buttons{Buttons: []Button{{Label: "See balance", Action: Action{Kind: ActBalance}}, {Label: "Log impact", Action: Action{Kind: ActOpenImpact}}}},
		}})
		return textReply("Approved request #%d: %s now has %s more credits, until %s.", id, v.Requester.Name, credits(after.Amount),
			until.In(h.Policy.Location()).Format("2 Jan 2006 15:04 MST"))
	default:
		msg := fmt.Sprintf("%s did not approve your request #%d for %s credits.", actor.Name, id, credits(after.Amount))
		if after.Note != "" {
			msg += " Their note: " + after.Note
		}
		h.tell(ctx, v.Requester, textReply("%s You can file a new request with more detail any time.", msg))
		return textReply("Denied request #%d. %s has been told.", id, v.Requester.Name)
	}
}

func (h *Handler) ask(ctx context.Context, actor ledger.Person, id int64, question string) Reply {
	req, err := h.Store.Request(ctx, id)
	if err != nil {
		return h.fail(err, "ask")
	}
	v, err := h.view(ctx, req)
	if err != nil {
		return h.fail(err, "ask")
	}
	if m, a := h.capacities(actor, v); !m && !a {
		return textReply("Only %s can ask about request #%d.", h.whoCanDecide(v), id)
	}
	question, ok := cleanText(question, maxNote)
	if !ok {
		return textReply("Type your question (up to %d characters).", maxNote)
	}
	h.tell(ctx, v.Requester, Reply{Blocks: []Block{
		&Text{Text: fmt.Sprintf("%s has a question about your request #%d for %s credits:", actor.Name, id, credits(req.Amount))},
		&List{Items: []Item{{Quote: question}}},
		&Context{Text: "Reply to them directly, or cancel and file a new request with more detail."},
	}})
	return textReply("Sent your question to %s.", v.Requester.Name)
}

func (h *Handler) validate(ctx context.Context, actor ledger.Person, id int64) Reply {
	im, err := h.Store.Impact(ctx, id)
	if err != nil {
		return h.fail(err, "validate impact")
	}
	owner, err := h.Store.PersonByID(ctx, im.PersonID)
	if err != nil {
		return h.fail(err, "validate impact")
	}
	if owner.ManagerID != actor.ID && !h.Policy.IsAdmin(actor.Email) || owner.ID == actor.ID {
		return textReply("Only %s's manager can validate their impact.", owner.Name)
	}
	im, changed, err := h.Store.ValidateImpact(ctx, id, actor.ID)
	if err != nil {
		return h.fail(err, "validate impact")
	}
	if !changed {
		return textReply("Impact #%d was already validated on %s.", id, im.ValidatedAt.In(h.Policy.Location()).Format("2 Jan 2006"))
	}
	h.tell(ctx, owner, textReply("%s validated your impact: %s", actor.Name, im.Text))
	return textReply("Validated %s's impact #%d.", owner.Name, id)
}
