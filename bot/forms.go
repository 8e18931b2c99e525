package bot

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tokenpay/tokenpay/ledger"
)

// Forms, seen from a platform: which form a button or command opens (known before the
// actor is looked up, so that a platform whose permission to open a form expires quickly,
// such as Slack's 3-second trigger_id, opens it first and does slow work after), and what
// is wrong with a submitted form, field by field (Reply.Errors), so the form can stay open.

// Form returns the form action a opens when pressed, if it opens one for anyone, without
// reading the store. Permission is checked when the form is submitted.
func (h *Handler) Form(a Action) (*Modal, bool) {
	if m, ok := h.coreForm(a); ok {
		return m, true
	}
	if h.ExtraForms != nil {
		return h.ExtraForms(a)
	}
	return nil, false
}

func (h *Handler) coreForm(a Action) (*Modal, bool) {
	switch a.Kind {
	case ActDeny:
		return &Modal{Title: "Deny request", Submit: "Deny", Action: a,
			Intro:  "Say why, so they can come back with what you need. They will see this.",
			Inputs: []Input{{ID: "reason", Label: "Reason", Multiline: true, Optional: true, MaxLength: maxNote}}}, true
	case ActAsk:
		return &Modal{Title: "Ask for details", Submit: "Send", Action: a,
			Inputs: []Input{{ID: "question", Label: "What would help you decide?", Multiline: true, MaxLength: maxNote}}}, true
	case ActOpenRequest:
		return h.requestModal(), true
	case ActOpenImpact:
		return &Modal{Title: "Log impact", Submit: "Log", Action: Action{Kind: ActSubmitImpact},
			Inputs: []Input{
				{ID: "text", Label: "What happened thanks to AI?", Placeholder: "Drafted the client summary in 20 minutes instead of 2 hours", Multiline: true, MaxLength: maxImpact},
				{ID: "hours", Label: "Hours saved (optional)", Placeholder: "1.5", Optional: true},
				{ID: "link", Label: "Link (optional)", Placeholder: "https://…", Optional: true},
			}}, true
	}
	return nil, false
}

// CommandForm returns the form a line of command text opens ("request" alone, "share"),
// without reading the store, and the action that opens it again (for a "try again"
// button when the platform could not open it).
func (h *Handler) CommandForm(text string) (*Modal, Action, bool) {
	if len(text) > MaxCommandBytes {
		return nil, Action{}, false
	}
	cmd := ParseCommand(text)
	if cmd.Name == "request" && len(cmd.Args) == 0 {
		return h.requestModal(), Action{Kind: ActOpenRequest}, true
	}
	if cmd.Name == "impact" && len(cmd.Args) == 0 {
		m, _ := h.coreForm(Action{Kind: ActOpenImpact})
		return m, Action{Kind: ActOpenImpact}, true
	}
	if f, ok := h.ExtraCommandForms[cmd.Name]; ok {
		m, again := f(cmd)
		return m, again, m != nil
	}
	return nil, Action{}, false
}

// FormErrors is the answer to a form whose fields are wrong: the form stays open with each
// message under its field; the sentences are for platforms that cannot keep it open.
func FormErrors(errs map[string]string, order ...string) Reply {
	r := Reply{Errors: errs}
	for _, id := range order {
		if msg, ok := errs[id]; ok {
			r.Blocks = append(r.Blocks, &Text{Text: msg})
		}
	}
	return r
}

// ClipValue shortens s to at most MaxActionValue bytes on a character boundary, so that it
// can ride on a button.
func ClipValue(s string) string {
	if len(s) <= MaxActionValue {
		return s
	}
	n := MaxActionValue
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// FieldErrors says what is wrong with the fields of a core form filled so far, by field
// id, with the words a submission would get; nothing is done with the form. A platform
// that asks one field at a time (the console) checks each as it is entered. Forms of
// other packages are checked when submitted (Reply.Errors).
func (h *Handler) FieldErrors(a Action, form map[string]string) map[string]string {
	r, ok := h.checkForm(a, form)
	if ok {
		return nil
	}
	return r.Errors
}

// checkForm looks at a submitted core form before anything is done with it; ok is false
// with the reply to send when a field is wrong.
func (h *Handler) checkForm(a Action, form map[string]string) (Reply, bool) {
	errs := map[string]string{}
	var order []string
	switch a.Kind {
	case ActSubmitRequest:
		order = []string{"amount", "use_case"}
		// The same checks, and words, as fileRequest's.
		amount, err := ledger.ParseAmount(form["amount"])
		switch {
		case errors.Is(err, ledger.ErrAmountTooLarge) || (err == nil && amount > h.Policy.Unlock.MaxRequest):
			errs["amount"] = fmt.Sprintf("One request can ask for at most %s credits. Ask for less, or talk to an admin about a larger grant.", credits(h.Policy.Unlock.MaxRequest))
		case err != nil:
			errs["amount"] = capitalise(ledger.ErrorMessage(err))
		}
		useCase := strings.TrimSpace(form["use_case"])
		if n := utf8.RuneCountInString(useCase); n > maxUseCase {
			errs["use_case"] = fmt.Sprintf("A use case can be at most %s characters; yours has %s.", credits(maxUseCase), credits(int64(n)))
		} else if _, ok := cleanText(useCase, maxUseCase); !ok {
			errs["use_case"] = fmt.Sprintf("Describe the use case (up to %s characters) so your manager can approve it.", credits(maxUseCase))
		}
	case ActDeny:
		order = []string{"reason"}
		if note, ok := cleanText(form["reason"], maxNote); !ok && note != "" {
			errs["reason"] = fmt.Sprintf("A reason can be at most %d characters.", maxNote)
		}
	case ActAsk:
		order = []string{"question"}
		if _, ok := cleanText(form["question"], maxNote); !ok {
			errs["question"] = fmt.Sprintf("Type your question (up to %d characters).", maxNote)
		}
	case ActSubmitImpact:
		order = []string{"text", "hours", "link"}
		if _, ok := cleanText(form["text"], maxImpact); !ok {
			errs["text"] = fmt.Sprintf("Say what happened (up to %s characters).", credits(maxImpact))
		}
		if s := strings.TrimSpace(form["hours"]); s != "" {
			if h, err := strconv.ParseFloat(s, 64); err != nil || h < 0 || h > 1000 || h != h {
				errs["hours"] = "Hours saved is a number from 0 to 1000, such as 1.5."
			}
		}
		if s := strings.TrimSpace(form["link"]); s != "" {
			if u, err := url.Parse(s); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(s, " \t\n") {
				errs["link"] = "The link is a web address starting with https://."
			}
		}
	}
	if len(errs) == 0 {
		return Reply{}, true
	}
	return FormErrors(errs, order...), false
}
