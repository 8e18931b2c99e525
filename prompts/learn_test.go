package prompts

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

func TestLearnPathLessonAndCompletion(t *testing.T) {
	f := newFixture(t)
	lessons, err := Lessons()
	if err != nil {
		t.Fatal(err)
	}
	eveP := f.people[eve]
	before := f.balance(eve)

	path := f.h.Command(f.ctx, eveP, "learn")
	wantText(t, path, "Your fluency path", "0 of 6 lessons done", "adds 10,000 credits", "○ 1. What a token is, and what it costs · 3 min", "[1] Open lesson 1", "[6] Open lesson 6")
	everyButtonRoundTrips(t, path)
	if bs := buttons(path); len(bs) != len(lessons) || bs[0].Style != bot.StylePrimary || bs[1].Style != bot.StyleDefault {
		t.Errorf("path buttons: %+v", bs)
	}

	open := f.h.Act(f.ctx, eveP, buttons(path)[1].Action, nil)
	wantText(t, open, "Lesson 2 of 6: "+lessons[1].Title, "Why specific beats short", "What is the task?", "[1] Complete  [2] Back to the path")
	if strings.Contains(render(open), "## ") || strings.Contains(open.Blocks[0].(*bot.Text).Text, "**") {
		t.Errorf("lesson markdown not converted:\n%s", render(open))
	}
	everyButtonRoundTrips(t, open)

	complete := button(t, open, "Complete")
	modal := f.h.Act(f.ctx, eveP, complete.Action, nil)
	if modal.Modal == nil || modal.Modal.Action != complete.Action || modal.Modal.Inputs[0].Label != lessons[1].Reflection {
		t.Fatalf("Complete opens %+v", modal.Modal)
	}
	wantText(t, f.h.Act(f.ctx, eveP, complete.Action, map[string]string{"reflection": "  "}), "Write your reflection as a sentence of at least 20 characters")
	wantText(t, f.h.Act(f.ctx, eveP, complete.Action, map[string]string{"reflection": strings.Repeat("r", maxReflection+1)}), "at most 500 characters; yours has 501")
	// A one-character or one-word answer does not earn the bonus (issue 16).
	for _, short := range []string{"r", "ok", "Good lesson", "Interesting.......... very"} {
		wantText(t, f.h.Act(f.ctx, eveP, complete.Action, map[string]string{"reflection": short}), "at least 20 characters (3 words or more)")
	}
	if got := f.balance(eve); got != before {
		t.Fatalf("balance moved without a valid reflection: %d", got)
	}

	done := f.h.Act(f.ctx, eveP, complete.Action, map[string]string{"reflection": "Name the audience in every prompt."})
	wantText(t, done, "🎉 Lesson complete: "+lessons[1].Title, "10,000 credits were added", "1 of 6 lessons done", "[1] Next: lesson 1", "[2] See balance")
	if got := f.balance(eve); got != before+10_000 {
		t.Fatalf("balance after completing: %d, want %d", got, before+10_000)
	}
	wantText(t, f.h.Act(f.ctx, eveP, bot.Action{Kind: bot.ActBalance}, nil), "210,000 credits")
	wantText(t, f.h.Command(f.ctx, eveP, "history"), "granted · lesson completed: "+lessons[1].Title)

	// Completed: the lesson says so, Complete is gone, a repeat grants nothing.
	wantText(t, f.h.Act(f.ctx, eveP, buttons(path)[1].Action, nil), "You completed this lesson on 10 Nov 2026", "[1] Next: lesson 1")
	wantText(t, f.h.Act(f.ctx, eveP, complete.Action, nil), "You completed “"+lessons[1].Title+"” on 10 Nov 2026 already")
	wantText(t, f.h.Act(f.ctx, eveP, complete.Action, map[string]string{"reflection": "Again, with the audience named."}), "its bonus was added then")
	wantText(t, f.h.Command(f.ctx, eveP, "learn"), "1 of 6 lessons done", "✅ 2. ", "Review lesson 2")
	if got := f.balance(eve); got != before+10_000 {
		t.Fatalf("balance after a repeat: %d", got)
	}

	// Someone else's progress is their own.
	wantText(t, f.h.Command(f.ctx, f.people[pat], "learn"), "0 of 6 lessons done")

	for _, ls := range lessons {
		f.h.Act(f.ctx, eveP, bot.Action{Kind: ActLessonDone, Value: ls.ID}, map[string]string{"reflection": "I will say who the answer is for."})
	}
	wantText(t, f.h.Command(f.ctx, eveP, "learn"), "6 of 6 lessons done", "You completed the path")
	if got := f.balance(eve); got != before+int64(len(lessons))*10_000 {
		t.Errorf("balance after the whole path: %d", got)
	}

	for _, a := range []bot.Action{{Kind: ActLesson, Value: "no-such-lesson"}, {Kind: ActLessonDone, Value: "x"}, {Kind: ActLesson}} {
		wantText(t, f.h.Act(f.ctx, eveP, a, nil), "no longer on the path")
	}
	wantText(t, f.h.Act(f.ctx, eveP, bot.Action{Kind: ActLessonDone, Value: "x"}, map[string]string{"reflection": "Give the model an example of the output."}), "no longer on the path")
}

func TestLessonBonusOnceUnderConcurrentClicks(t *testing.T) {
	f := newFixture(t)
	lessons, err := Lessons()
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]int64{eve: f.balance(eve), pat: f.balance(pat)}
	var wg sync.WaitGroup
	for range 8 {
		for _, who := range []string{eve, pat} {
			for _, ls := range lessons[:2] {
				wg.Go(func() {
					r := f.h.Act(context.Background(), f.people[who], bot.Action{Kind: ActLessonDone, Value: ls.ID}, map[string]string{"reflection": "Give the model an example of the output."})
					if out := render(r); !strings.Contains(out, "Lesson complete") && !strings.Contains(out, "already") {
						t.Errorf("%s completing %s: %s", who, ls.ID, out)
					}
				})
			}
		}
	}
	wg.Wait()
	for who, b := range before {
		if got := f.balance(who); got != b+20_000 {
			t.Errorf("%s: balance %d after 8 clicks on each of two lessons, want %d", who, got, b+20_000)
		}
		gs, err := f.db.Grants(f.ctx, f.people[who].ID, 20)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, g := range gs {
			if g.Kind == ledger.GrantLesson {
				n++
				if !g.ExpiresAt.Equal(f.pol.PeriodEnd(testNow)) {
					t.Errorf("lesson grant expires %v, want the period end %v", g.ExpiresAt, f.pol.PeriodEnd(testNow))
				}
			}
		}
		if n != 2 {
			t.Errorf("%s has %d lesson grants, want 2", who, n)
		}
	}
	if v, err := f.db.Verify(f.ctx); err != nil || len(v) > 0 {
		t.Errorf("verify: %v %v", v, err)
	}
}

func TestLessonWithoutBonus(t *testing.T) {
	f := newFixture(t)
	f.pol.Lessons.Bonus = 0
	before := f.balance(eve)
	path := f.h.Command(f.ctx, f.people[eve], "learn")
	if strings.Contains(render(path), "credits") {
		t.Errorf("path promises credits the policy does not give:\n%s", render(path))
	}
	r := f.h.Act(f.ctx, f.people[eve], bot.Action{Kind: ActLessonDone, Value: "what-is-a-token"}, map[string]string{"reflection": "Give the model an example of the output."})
	wantText(t, r, "Lesson complete")
	if strings.Contains(render(r), "credits") || f.balance(eve) != before {
		t.Errorf("completion without a bonus: %s, balance %d", render(r), f.balance(eve))
	}
}

func TestMarkdownText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"## Heading", "*Heading*"},
		{"# Top  \ntext", "*Top*\ntext"},
		{"1. **What is the task?** Summarise.", "1. *What is the task?* Summarise."},
		{"- **Who you are** and `/tokens balance`", "- *Who you are* and `/tokens balance`"},
		{"#hashtag stays", "#hashtag stays"},
		{"a ** b", "a ** b"},
	}
	for _, tt := range tests {
		if got := markdownText(tt.in); got != tt.want {
			t.Errorf("markdownText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	lessons, err := Lessons()
	if err != nil {
		t.Fatal(err)
	}
	for _, ls := range lessons {
		got := markdownText(ls.Body)
		if strings.Contains(got, "**") || strings.Contains(got, "\n## ") {
			t.Errorf("lesson %s keeps markdown:\n%s", ls.ID, got)
		}
		// One text block: Slack caps a section at 3,000 characters.
		if len(got) > 3000 {
			t.Errorf("lesson %s is %d bytes, too long for one block", ls.ID, len(got))
		}
	}
}
