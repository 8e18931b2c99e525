package prompts

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

func (l *Library) learnCommand(ctx context.Context, actor ledger.Person, _ bot.Command) bot.Reply {
	return l.path(ctx, actor)
}

// progress loads the lessons and what actor completed of them.
func (l *Library) progress(ctx context.Context, actor ledger.Person) ([]Lesson, map[string]time.Time, error) {
	lessons, err := Lessons()
	if err != nil {
		return nil, nil, err
	}
	done, err := l.Store.LessonProgress(ctx, actor.ID)
	if err != nil {
		return nil, nil, err
	}
	return lessons, done, nil
}

func progressBar(lessons []Lesson, done map[string]time.Time) *bot.Progress {
	n := 0
	for _, ls := range lessons {
		if !done[ls.ID].IsZero() {
			n++
		}
	}
	return &bot.Progress{Label: fmt.Sprintf("%d of %d lessons done", n, len(lessons)), Value: int64(n), Max: int64(len(lessons))}
}

// next returns the first lesson not done, if any.
func next(lessons []Lesson, done map[string]time.Time) (Lesson, bool) {
	for _, ls := range lessons {
		if done[ls.ID].IsZero() {
			return ls, true
		}
	}
	return Lesson{}, false
}

func lessonButton(ls Lesson, label string, style bot.Style) bot.Button {
	return bot.Button{Label: label, Action: bot.Action{Kind: ActLesson, Value: ls.ID}, Style: style}
}

var backToPath = bot.Button{Label: "Back to the path", Action: bot.Action{Kind: ActLearn}}

// path shows the fluency path: progress, and each lesson with a button to open it.
func (l *Library) path(ctx context.Context, actor ledger.Person) bot.Reply {
	lessons, done, err := l.progress(ctx, actor)
	if err != nil {
		return l.fail(err, "fluency path")
	}
	intro := "Short lessons of a few minutes each, to get more out of AI in your own work."
	if b := l.Policy.Lessons.Bonus; b > 0 {
		intro += fmt.Sprintf(" Each one you complete adds %s credits to your allowance this period.", ledger.FormatCredits(b))
	}
	r := bot.Reply{Header: "Your fluency path", Blocks: []bot.Block{progressBar(lessons, done), &bot.Text{Text: intro}}}
	upNext, more := next(lessons, done)
	for _, ls := range lessons {
		mark, label, style := "○", fmt.Sprintf("Open lesson %d", ls.Order), bot.StyleDefault
		if !done[ls.ID].IsZero() {
			mark, label = "✅", fmt.Sprintf("Review lesson %d", ls.Order)
		} else if more && ls.ID == upNext.ID {
			style = bot.StylePrimary
		}
		r.Blocks = append(r.Blocks,
			&bot.Text{Text: fmt.Sprintf("%s *%d. %s* · %d min", mark, ls.Order, ls.Title, ls.Minutes)},
			&bot.Buttons{Buttons: []bot.Button{lessonButton(ls, label, style)}})
	}
	if !more {
		r.Blocks = append(r.Blocks, &bot.Context{Text: "You completed the path. Keep logging outcomes with /tokens impact: they show what the practice changes."})
	}
	return r
}

func findLesson(lessons []Lesson, id string) (Lesson, bool) {
	for _, ls := range lessons {
		if ls.ID == id {
			return ls, true
		}
	}
	return Lesson{}, false
}

func noLesson() bot.Reply {
	return text("That lesson is no longer on the path. Type /tokens learn to see the lessons.")
}

// lesson shows one lesson and, until it is done, the button to complete it.
func (l *Library) lesson(ctx context.Context, actor ledger.Person, id string) bot.Reply {
	lessons, done, err := l.progress(ctx, actor)
	if err != nil {
		return l.fail(err, "open lesson")
	}
	ls, ok := findLesson(lessons, id)
	if !ok {
		return noLesson()
	}
	r := bot.Reply{Header: fmt.Sprintf("Lesson %d of %d: %s", ls.Order, len(lessons), ls.Title), Blocks: []bot.Block{
		&bot.Text{Text: markdownText(ls.Body)},
	}}
	if at := done[ls.ID]; !at.IsZero() {
		r.Blocks = append(r.Blocks, &bot.Context{Text: "You completed this lesson on " + l.date(at) + "."})
		buttons := []bot.Button{backToPath}
		if n, more := next(lessons, done); more {
			buttons = append([]bot.Button{lessonButton(n, fmt.Sprintf("Next: lesson %d", n.Order), bot.StylePrimary)}, buttons...)
		}
		r.Blocks = append(r.Blocks, &bot.Buttons{Buttons: buttons})
		return r
	}
	r.Blocks = append(r.Blocks,
		&bot.Context{Text: fmt.Sprintf("About %d minutes. When you are done, complete it with a one-line reflection.", ls.Minutes)},
		&bot.Buttons{Buttons: []bot.Button{
			{Label: "Complete", Action: bot.Action{Kind: ActLessonDone, Value: ls.ID}, Style: bot.StylePrimary},
			backToPath,
		}})
	return r
}

func (l *Library) date(t time.Time) string { return t.In(l.Policy.Location()).Format("2 Jan 2006") }

// completeModal asks the lesson's reflection, unless the lesson is already done.
func (l *Library) completeModal(ctx context.Context, actor ledger.Person, id string) bot.Reply {
	lessons, done, err := l.progress(ctx, actor)
	if err != nil {
		return l.fail(err, "complete lesson")
	}
	ls, ok := findLesson(lessons, id)
	if !ok {
		return noLesson()
	}
	if at := done[ls.ID]; !at.IsZero() {
		return text("You completed “%s” on %s already. Nice work.", ls.Title, l.date(at))
	}
	return bot.Reply{Modal: reflectionModal(ls)}
}

// reflectionModal asks a lesson's one-line reflection.
func reflectionModal(ls Lesson) *bot.Modal {
	return &bot.Modal{Title: "Complete the lesson", Submit: "Complete", Action: bot.Action{Kind: ActLessonDone, Value: ls.ID},
		Intro:  fmt.Sprintf("%s: one line is enough. It turns what you read into a next step.", ls.Title),
		Inputs: []bot.Input{{ID: "reflection", Label: ls.Reflection, MaxLength: maxReflection}}}
}

// complete records the lesson with its reflection and grants the policy's bonus once.
func (l *Library) complete(ctx context.Context, actor ledger.Person, id, reflection string) bot.Reply {
	lessons, err := Lessons()
	if err != nil {
		return l.fail(err, "complete lesson")
	}
	ls, ok := findLesson(lessons, id)
	if !ok {
		return noLesson()
	}
	if problem := reflectionProblem(reflection); problem != "" {
		return text("%s To complete the lesson: %s", problem, ls.Reflection)
	}
	reflection = strings.TrimSpace(reflection)
	now := l.Now()
	res, err := l.Store.CompleteLesson(ctx, ledger.LessonCompletion{PersonID: actor.ID, LessonID: ls.ID, Reflection: reflection,
		Bonus: l.Policy.Lessons.Bonus, ExpiresAt: l.Policy.PeriodEnd(now), Reason: "lesson completed: " + ls.Title})
	if err != nil {
		return l.fail(err, "complete lesson")
	}
	if !res.First {
		return text("You completed “%s” on %s already; its bonus was added then.", ls.Title, l.date(res.CompletedAt))
	}
	done, err := l.Store.LessonProgress(ctx, actor.ID)
	if err != nil {
		return l.fail(err, "complete lesson")
	}
	msg := fmt.Sprintf("🎉 Lesson complete: %s.", ls.Title)
	if res.Grant.Amount > 0 {
		msg += fmt.Sprintf(" %s credits were added to your allowance, yours until the period resets.", ledger.FormatCredits(res.Grant.Amount))
	}
	r := bot.Reply{Blocks: []bot.Block{&bot.Text{Text: msg}, progressBar(lessons, done)}}
	buttons := []bot.Button{{Label: "See balance", Action: bot.Action{Kind: bot.ActBalance}}}
	if n, more := next(lessons, done); more {
		buttons = append([]bot.Button{lessonButton(n, fmt.Sprintf("Next: lesson %d", n.Order), bot.StylePrimary)}, buttons...)
	} else {
		r.Blocks = append(r.Blocks, &bot.Context{Text: "That was the last lesson: you completed the fluency path."})
	}
	r.Blocks = append(r.Blocks, &bot.Buttons{Buttons: buttons})
	return r
}

var (
	mdHeading = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*$`)
	mdBold    = regexp.MustCompile(`\*\*(.+?)\*\*`)
)

// markdownText turns a lesson's markdown into the reply model's text, whose only markup
// is *bold* and _italic_: headings and **strong** become bold; lists and quotes read
// fine as they are.
func markdownText(md string) string {
	s := mdBold.ReplaceAllString(md, "*$1*")
	return strings.TrimSpace(mdHeading.ReplaceAllString(s, "*$1*"))
}
