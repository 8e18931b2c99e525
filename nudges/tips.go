package nudges

import (
	"context"
	"fmt"
	"strings"

	"github.com/tokenpay/tokenpay/ledger"
)

// Tips picks the prompt to suggest to a person; *prompts.Library is the real one.
type Tips interface {
	TipFor(ctx context.Context, person ledger.Person) (ledger.Prompt, bool, error)
}

// tipPicker asks Tips once per distinct situation rather than once per person. A tip
// depends on the person only through their role, their team and the prompts they were
// shown, used or wrote; people alike in all three get the same answer, so a digest to
// 100,000 people asks the library a few dozen times.
type tipPicker struct {
	store    ledger.Store
	tips     Tips
	excluded map[int64][]int64 // of the page being placed
	cache    map[string]tipAnswer
}

type tipAnswer struct {
	prompt ledger.Prompt
	ok     bool
}

func newTipPicker(store ledger.Store, tips Tips) *tipPicker {
	return &tipPicker{store: store, tips: tips, cache: map[string]tipAnswer{}}
}

// load reads the prompts left out for the people of page (in id order), in place of the
// previous page's.
func (t *tipPicker) load(ctx context.Context, page []Member) error {
	if t.tips == nil || len(page) == 0 {
		return nil
	}
	var err error
	t.excluded, err = t.store.TipExclusions(ctx, page[0].Person.ID-1, page[len(page)-1].Person.ID)
	return err
}

// pick returns the tip for p, of the page last loaded; ok is false when there is none
// (or no library).
func (t *tipPicker) pick(ctx context.Context, p ledger.Person) (ledger.Prompt, bool, error) {
	if t.tips == nil {
		return ledger.Prompt{}, false, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x1f%s", p.Role, p.Team)
	for _, id := range t.excluded[p.ID] {
		fmt.Fprintf(&b, "\x1f%d", id)
	}
	key := b.String()
	if a, ok := t.cache[key]; ok {
		return a.prompt, a.ok, nil
	}
	prompt, ok, err := t.tips.TipFor(ctx, p)
	if err != nil {
		return ledger.Prompt{}, false, fmt.Errorf("tip for %s: %w", p.Email, err)
	}
	t.cache[key] = tipAnswer{prompt, ok}
	return prompt, ok, nil
}
