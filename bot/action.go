package bot

import (
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

// ParseAction reads an action id; unknown kinds are reported as not ok.
func ParseAction(s string) (Action, bool) {
	kind, value, _ := strings.Cut(s, ":")
	a := Action{Kind: ActionKind(kind), Value: value}
	switch a.Kind {
	case ActApprove, ActDeny, ActAsk, ActCancel, ActValidate:
		_, err := strconv.ParseInt(value, 10, 64)
		return a, err == nil
	case ActOpenRequest, ActSubmitRequest, ActOpenImpact, ActSubmitImpact, ActNudgesOff, ActBalance:
		return a, true
	}
	return a, false
}

// ID returns the numeric value of an action on a request or impact.
func (a Action) ID() int64 {
	n, _ := strconv.ParseInt(a.Value, 10, 64)
	return n
}
