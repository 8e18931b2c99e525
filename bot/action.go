package bot

import (
	"regexp"
	"strconv"
	"strings"
)

// ActionKind names what a button or form submission does.
type ActionKind string

const (
	ActApprove       ActionKind = "approve"
	ActDeny          ActionKind = "deny"
	ActAsk           ActionKind = "ask"
	ActCancel        ActionKind = "cancel"
	ActValidate      ActionKind = "validate"
	ActOpenRequest   ActionKind = "open_request"
	ActSubmitRequest ActionKind = "submit_request"
	ActOpenImpact    ActionKind = "open_impact"
	ActSubmitImpact  ActionKind = "submit_impact"
	ActNudgesOff     ActionKind = "nudges_off"
	ActBalance       ActionKind = "balance"
	// ActTeam shows the team view at a page of its pending requests and outcomes
	// (value: the page number, from 0).
	ActTeam ActionKind = "team"
)

// Action is a typed, short action id: "approve:42". Platforms carry it as a button's
// action id or a card's data, and hand it back unchanged.
type Action struct {
	Kind  ActionKind
	Value string
}

func (a Action) String() string {
	if a.Value == "" {
		return string(a.Kind)
	}
	return string(a.Kind) + ":" + a.Value
}

// MaxActionValue bounds an action's value; platforms cap ids near 255 bytes.
const MaxActionValue = 200

// ParseAction reads an action id. The core's kinds are checked exactly; other lower-case
// kinds are extensions (prompts, lessons) that Handler.ExtraActions interprets.
func ParseAction(s string) (Action, bool) {
	kind, value, _ := strings.Cut(s, ":")
	a := Action{Kind: ActionKind(kind), Value: value}
	switch a.Kind {
	case ActApprove, ActDeny, ActAsk, ActCancel, ActValidate, ActTeam:
		_, err := strconv.ParseInt(value, 10, 64)
		return a, err == nil
	case ActOpenRequest, ActSubmitRequest, ActOpenImpact, ActSubmitImpact, ActNudgesOff, ActBalance:
		return a, true
	}
	return a, extensionKind.MatchString(kind) && len(value) <= MaxActionValue
}

var extensionKind = regexp.MustCompile(`^[a-z][a-z_]{0,31}$`)

// ID returns the numeric value of an action on a request or impact.
func (a Action) ID() int64 {
	n, _ := strconv.ParseInt(a.Value, 10, 64)
	return n
}
