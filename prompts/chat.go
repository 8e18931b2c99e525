package prompts

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

// Action kinds the library adds to the bot. Values: a prompt id, "<page>:<query>", a
// lesson id, or for share_open optional text to prefill the prompt with (the Slack
// "Save as prompt" shortcut sends the message's text).
const (
	ActPromptUse   bot.ActionKind = "prompt_use"
	ActPromptVote  bot.ActionKind = "prompt_vote"
	ActPromptPage  bot.ActionKind = "prompt_page"
	ActShareOpen   bot.ActionKind = "share_open"
	ActShareSubmit bot.ActionKind = "share_submit"
	ActLearn       bot.ActionKind = "learn"
	ActLesson      bot.ActionKind = "lesson"
	ActLessonDone  bot.ActionKind = "lesson_done"
)

// Limits on what people share. The body fits a Slack text input (3,000 characters).
const (
	maxBody       = 3000
	maxTags       = 8
	maxTagLen     = 30
	maxReflection = 500
	// minReflection is the shortest reflection that completes a lesson (and earns its
	// bonus), in characters and words: a thoughtful sentence passes, "ok" does not.
	minReflection      = 20
	minReflectionWords = 3
	excerptLen         = 160
)

// Register adds the library's commands (prompts, share, learn, admin prompts) and button
// actions to h. Actions h already handled through ExtraActions keep working: the library
// passes on the kinds it does not know.
func (l *Library) Register(h *bot.Handler) {
	if h.Extra == nil {
		h.Extra = map[string]bot.CommandFunc{}
	}
	h.Extra["prompts"] = l.promptsCommand
	h.Extra["share"] = l.shareCommand
	h.Extra["learn"] = l.learnCommand
	h.Extra["admin prompts"] = l.adminCommand
	if h.ExtraHelp == nil {
		h.ExtraHelp = map[string]string{}
	}
	h.ExtraHelp["prompts"] = "prompts [query]: find prompts colleagues found useful"
	h.ExtraHelp["share"] = "share: share a prompt that worked for you"
	h.ExtraHelp["learn"] = "learn: short lessons on using AI well, with a bonus for each"
	h.ExtraHelp["admin prompts"] = "admin prompts hide|show|feature|unfeature <id>"
	// Forms open before anything is looked up (Slack's trigger_id lasts 3 seconds); a
	// lesson completed already is said so when the form is submitted.
	nextForms := h.ExtraForms
	h.ExtraForms = func(a bot.Action) (*bot.Modal, bool) {
		switch a.Kind {
		case ActShareOpen:
			return shareModal(a.Value), true
		case ActLessonDone:
			lessons, err := Lessons()
			if ls, ok := findLesson(lessons, a.Value); err == nil && ok {
				return reflectionModal(ls), true
			}
		}
		if nextForms != nil {
			return nextForms(a)
		}
		return nil, false
	}
	if h.ExtraCommandForms == nil {
		h.ExtraCommandForms = map[string]func(bot.Command) (*bot.Modal, bot.Action){}
	}
	h.ExtraCommandForms["share"] = func(cmd bot.Command) (*bot.Modal, bot.Action) {
		return shareModal(cmd.Rest), bot.Action{Kind: ActShareOpen, Value: bot.ClipValue(cmd.Rest)}
	}
	next := h.ExtraActions
	h.ExtraActions = func(ctx context.Context, actor ledger.Person, a bot.Action, form map[string]string) (bot.Reply, bool) {
		if r, ok := l.Act(ctx, actor, a, form); ok {
			return r, true
		}
		if next != nil {
			return next(ctx, actor, a, form)
		}
		return bot.Reply{}, false
	}
}

// Act performs one of the library's actions; ok is false for a kind it does not know.
func (l *Library) Act(ctx context.Context, actor ledger.Person, a bot.Action, form map[string]string) (r bot.Reply, ok bool) {
	switch a.Kind {
	case ActPromptUse:
		return l.use(ctx, actor, a.Value), true
	case ActPromptVote:
		return l.vote(ctx, actor, a.Value), true
	case ActPromptPage:
		page, query, _ := strings.Cut(a.Value, ":")
		n, err := strconv.Atoi(page)
		if err != nil || n < 1 {
			n = 1
		}
		return l.results(ctx, query, n), true
	case ActShareOpen:
		return bot.Reply{Modal: shareModal(a.Value)}, true
	case ActShareSubmit:
		if errs := shareErrors(form); errs != nil {
			return bot.FormErrors(errs, "title", "body"), true
		}
		return l.share(ctx, actor, form), true
	case ActLearn:
		return l.path(ctx, actor), true
	case ActLesson:
		return l.lesson(ctx, actor, a.Value), true
	case ActLessonDone:
		if form == nil {
			return l.completeModal(ctx, actor, a.Value), true
		}
		if problem := reflectionProblem(form["reflection"]); problem != "" {
			return bot.FormErrors(map[string]string{"reflection": problem}, "reflection"), true
		}
		return l.complete(ctx, actor, a.Value, form["reflection"]), true
	}
	return bot.Reply{}, false
}

func text(format string, args ...any) bot.Reply {
	return bot.Reply{Blocks: []bot.Block{&bot.Text{Text: fmt.Sprintf(format, args...)}}}
}

// fail turns an error into a reply: user-safe messages as they are, internal errors logged.
func (l *Library) fail(err error, op string) bot.Reply {
	if ledger.ErrorCode(err) == ledger.Internal {
		l.Log.Error().Err(err).Str("op", op).Msg("prompt library")
	}
	return text("%s", ledger.ErrorMessage(err))
}

func promptID(value string) (int64, bool) {
	id, err := strconv.ParseInt(value, 10, 64)
	return id, err == nil && id > 0
}

// truncate keeps the first n characters of s.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// cut shortens s to n characters, marking the cut.
func cut(s string, n int) string {
	if t := truncate(s, n); t != s {
		return t + "…"
	}
	return s
}

func (l *Library) promptsCommand(ctx context.Context, _ ledger.Person, cmd bot.Command) bot.Reply {
	return l.results(ctx, cmd.Rest, 1)
}

// results shows one page of search results with Use and Useful on each prompt.
func (l *Library) results(ctx context.Context, query string, number int) bot.Reply {
	page, err := l.Search(ctx, query, number)
	if err != nil {
		return l.fail(err, "search prompts")
	}
	terms := ledger.SearchTerms(query)
	r := bot.Reply{Header: "Prompts colleagues found useful"}
	if len(terms) > 0 {
		r.Header = "Prompts for “" + cut(strings.TrimSpace(query), 60) + "”"
	}
	share := bot.Button{Label: "Share a prompt", Action: bot.Action{Kind: ActShareOpen}}
	if page.Total == 0 {
		r.Blocks = append(r.Blocks,
			&bot.Text{Text: "No prompt matches those words yet. Try fewer or broader words, or share one that worked for you."},
			&bot.Buttons{Buttons: []bot.Button{share}})
		return r
	}
	if len(page.Prompts) == 0 {
		r.Blocks = append(r.Blocks, &bot.Text{Text: fmt.Sprintf("That is past the last page: there are %d prompts.", page.Total)})
		return r
	}
	for _, p := range page.Prompts {
		id := strconv.FormatInt(p.ID, 10)
		r.Blocks = append(r.Blocks,
			&bot.Text{Text: "*" + p.Title + "*\n" + cut(strings.Join(strings.Fields(p.Body), " "), excerptLen)},
			&bot.Context{Text: about(p)},
			&bot.Buttons{Buttons: []bot.Button{
				{Label: "Use", Action: bot.Action{Kind: ActPromptUse, Value: id}, Style: bot.StylePrimary},
				{Label: "Useful", Action: bot.Action{Kind: ActPromptVote, Value: id}},
			}})
	}
	first := (page.Number-1)*PageSize + 1
	r.Blocks = append(r.Blocks, &bot.Context{Text: fmt.Sprintf("Showing %d–%d of %d. Use shows the whole prompt, ready to copy.",
		first, first+len(page.Prompts)-1, page.Total)})
	buttons := []bot.Button{share}
	if page.More() {
		// The words, not the raw text, ride on the button: shorter, and the same search.
		buttons = append([]bot.Button{{Label: "More", Action: pageAction(page.Number+1, terms)}}, buttons...)
	}
	r.Blocks = append(r.Blocks, &bot.Buttons{Buttons: buttons})
	return r
}

// pageAction carries as many search words as fit in an action value.
func pageAction(number int, terms []string) bot.Action {
	v := strconv.Itoa(number) + ":"
	for i, t := range terms {
		if i > 0 {
			t = " " + t
		}
		if len(v)+len(t) > bot.MaxActionValue {
			break
		}
		v += t
	}
	return bot.Action{Kind: ActPromptPage, Value: v}
}

// about is the small print under a prompt: what it is for and who found it useful.
func about(p Prompt) string {
	parts := []string{fmt.Sprintf("#%d", p.ID)}
	if p.Featured {
		parts = append(parts, "⭐ featured")
	}
	if p.Workflow != "" {
		parts = append(parts, p.Workflow)
	}
	if len(p.Tags) > 0 {
		parts = append(parts, strings.Join(p.Tags, ", "))
	}
	switch {
	case p.Votes == 1:
		parts = append(parts, "1 person found it useful")
	case p.Votes > 1:
		parts = append(parts, fmt.Sprintf("%d people found it useful", p.Votes))
	}
	switch {
	case p.Uses == 1:
		parts = append(parts, "used once")
	case p.Uses > 1:
		parts = append(parts, fmt.Sprintf("used %d times", p.Uses))
	}
	if p.AuthorName != "" {
		parts = append(parts, "shared by "+p.AuthorName)
	} else {
		parts = append(parts, "starter library")
	}
	return strings.Join(parts, " · ")
}

func (l *Library) use(ctx context.Context, actor ledger.Person, value string) bot.Reply {
	id, ok := promptID(value)
	if !ok {
		return text("That button is out of date. Search again with /tokens prompts.")
	}
	p, err := l.Store.UsePrompt(ctx, id, actor.ID)
	if err != nil {
		return l.fail(err, "use prompt")
	}
	how := "Copy it into your AI tool and adjust it to your task."
	if names, err := placeholders(p.Body); err == nil && len(names) > 0 {
		how = "Copy it into your AI tool and replace each {{placeholder}} with your own details."
	}
	return bot.Reply{Header: p.Title, Blocks: []bot.Block{
		&bot.Text{Text: p.Body},
		&bot.Context{Text: how + " If it helps, press Useful so colleagues find it too; if it saves you time, log the outcome."},
		&bot.Buttons{Buttons: []bot.Button{
			{Label: "Useful", Action: bot.Action{Kind: ActPromptVote, Value: value}},
			{Label: "Log impact", Action: bot.Action{Kind: bot.ActOpenImpact}},
		}},
	}}
}

func (l *Library) vote(ctx context.Context, actor ledger.Person, value string) bot.Reply {
	id, ok := promptID(value)
	if !ok {
		return text("That button is out of date. Search again with /tokens prompts.")
	}
	p, changed, err := l.Store.VotePrompt(ctx, id, actor.ID)
	if err != nil {
		return l.fail(err, "vote for prompt")
	}
	if !changed {
		return text("You already marked “%s” as useful. One vote each keeps the library fair.", p.Title)
	}
	return text("Thanks! You marked “%s” as useful, which helps colleagues find it.", p.Title)
}

func (l *Library) shareCommand(_ context.Context, _ ledger.Person, cmd bot.Command) bot.Reply {
	return bot.Reply{Modal: shareModal(cmd.Rest)}
}

// shareModal asks for a title, the prompt and tags; body prefills the prompt.
func shareModal(body string) *bot.Modal {
	return &bot.Modal{Title: "Share a prompt", Submit: "Share", Action: bot.Action{Kind: ActShareSubmit},
		Intro: "A prompt that worked for you saves a colleague the trial and error. Mark what to fill in with {{placeholders}}.",
		Inputs: []bot.Input{
			{ID: "title", Label: "Title", Placeholder: "Turn interview notes into themes", MaxLength: maxTitleLen},
			{ID: "body", Label: "Prompt", Initial: truncate(strings.TrimSpace(body), maxBody), Multiline: true, MaxLength: maxBody},
			{ID: "tags", Label: "Tags, separated by commas (optional)", Placeholder: "research, interviews", Optional: true, MaxLength: 200},
		}}
}

// parseTags turns "Research, code review; Q3" into [research code-review q3]: kebab-case,
// without repeats, at most maxTags.
func parseTags(s string) []string {
	var tags []string
	for _, raw := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == '#' || r == '\n' }) {
		words := strings.FieldsFunc(strings.ToLower(raw), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		tag := strings.Trim(truncate(strings.Join(words, "-"), maxTagLen), "-")
		if tag != "" && !slices.Contains(tags, tag) {
			tags = append(tags, tag)
		}
		if len(tags) == maxTags {
			break
		}
	}
	return tags
}

// checkText trims user text and checks its length in characters.
// reflectionProblem says what is wrong with a lesson reflection, "" when it will do.
func reflectionProblem(s string) string {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	switch {
	case n > maxReflection:
		return fmt.Sprintf("Keep your reflection to one line of at most %d characters; yours has %s.", maxReflection, ledger.FormatCredits(int64(n)))
	case !utf8.ValidString(s) || n < minReflection || len(strings.Fields(s)) < minReflectionWords:
		return fmt.Sprintf("Write your reflection as a sentence of at least %d characters (%d words or more): what will you do differently?", minReflection, minReflectionWords)
	}
	return ""
}

func checkText(s string, maxRunes int) (string, bool) {
	s = strings.TrimSpace(s)
	return s, s != "" && utf8.ValidString(s) && utf8.RuneCountInString(s) <= maxRunes
}

// shareErrors says what is wrong with a submitted share form, by field; nil when nothing.
func shareErrors(form map[string]string) map[string]string {
	errs := map[string]string{}
	if _, ok := checkText(form["title"], maxTitleLen); !ok {
		errs["title"] = fmt.Sprintf("Give the prompt a title of up to %d characters.", maxTitleLen)
	}
	if _, ok := checkText(form["body"], maxBody); !ok {
		errs["body"] = fmt.Sprintf("Paste the prompt itself (up to %d characters).", maxBody)
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func (l *Library) share(ctx context.Context, actor ledger.Person, form map[string]string) bot.Reply {
	title, ok := checkText(form["title"], maxTitleLen)
	if !ok {
		return text("Give the prompt a title of up to %d characters, then try /tokens share again.", maxTitleLen)
	}
	body, ok := checkText(form["body"], maxBody)
	if !ok {
		return text("Paste the prompt itself (up to %d characters), then try /tokens share again.", maxBody)
	}
	// A shared prompt is suggested first to people in the author's role; anyone finds it.
	role := strings.ToLower(strings.TrimSpace(actor.Role))
	if !slices.Contains(roles, role) {
		role = anyRole
	}
	p, err := l.Store.AddPrompt(ctx, ledger.PromptInput{Title: title, Body: body, Tags: parseTags(form["tags"]),
		Roles: []string{role}, AuthorID: actor.ID})
	if err != nil {
		return l.fail(err, "share prompt")
	}
	r := text("Thank you for sharing “%s”. Colleagues will find it with /tokens prompts, and it may help someone in a tip.", p.Title)
	if len(p.Tags) > 0 {
		r.Blocks = append(r.Blocks, &bot.Context{Text: "Tags: " + strings.Join(p.Tags, ", ")})
	}
	return r
}

func (l *Library) adminCommand(ctx context.Context, actor ledger.Person, cmd bot.Command) bot.Reply {
	const usage = "Usage: /tokens admin prompts hide|show|feature|unfeature <prompt number>"
	if !l.Policy.IsAdmin(actor.Email) {
		return text("Moderating the prompt library is for the admins named in the policy.")
	}
	if len(cmd.Args) != 1 {
		return text("%s", usage)
	}
	id, ok := promptID(strings.TrimPrefix(cmd.Args[0], "#"))
	if !ok {
		return text("%q is not a prompt number.\n%s", cut(cmd.Args[0], 20), usage)
	}
	moderations := map[string]struct {
		hiding, value bool // hiding: the hidden flag, else the featured one
		state, done   string
	}{
		"hide":      {true, true, "hidden", "is hidden: it no longer appears in search or tips"},
		"show":      {true, false, "visible", "is back in search and tips"},
		"feature":   {false, true, "featured", "is featured: it comes first in search and tips"},
		"unfeature": {false, false, "not featured", "is no longer featured"},
	}
	m, ok := moderations[cmd.Name]
	if !ok {
		return text("%s", usage)
	}
	moderate := l.Store.FeaturePrompt
	if m.hiding {
		moderate = l.Store.HidePrompt
	}
	p, changed, err := moderate(ctx, id, m.value, actor.Email)
	if err != nil {
		return l.fail(err, "moderate prompt")
	}
	if !changed {
		return text("Prompt #%d “%s” is already %s.", p.ID, p.Title, m.state)
	}
	return text("Prompt #%d “%s” %s.", p.ID, p.Title, m.done)
}
