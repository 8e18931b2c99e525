package console

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

// Inbox is the console's notifier: messages wait per person and are shown when that person
// is at the keyboard (after `:as`). They live as long as the console runs; the session
// says so whenever one is left for someone else.
type Inbox struct {
	mu      sync.Mutex
	pending map[int64][]bot.Reply
	to      map[int64]ledger.Person // who each pending list is for
	posted  map[int64]bool          // approval messages already delivered, by request id
}

// NewInbox returns an empty inbox.
func NewInbox() *Inbox {
	return &Inbox{pending: map[int64][]bot.Reply{}, to: map[int64]ledger.Person{}, posted: map[int64]bool{}}
}

// Direct implements bot.Notifier.
func (in *Inbox) Direct(_ context.Context, to ledger.Person, r bot.Reply) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.pending[to.ID] = append(in.pending[to.ID], r)
	in.to[to.ID] = to
	return nil
}

// waiting returns who has messages waiting, other than id, and how many each.
func (in *Inbox) waiting(id int64) map[ledger.Person]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[ledger.Person]int{}
	for pid, msgs := range in.pending {
		if pid != id && len(msgs) > 0 {
			out[in.to[pid]] = len(msgs)
		}
	}
	return out
}

// Approval implements bot.Notifier: deciders get the message when a request is filed;
// later updates are not re-sent (the console has no message to edit in place).
func (in *Inbox) Approval(_ context.Context, v bot.RequestView) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.posted[v.Request.ID] || v.Request.Status != ledger.RequestPending {
		return nil
	}
	in.posted[v.Request.ID] = true
	for _, p := range v.Deciders {
		in.pending[p.ID] = append(in.pending[p.ID], v.Message)
		in.to[p.ID] = p
	}
	return nil
}

func (in *Inbox) take(id int64) []bot.Reply {
	in.mu.Lock()
	defer in.mu.Unlock()
	r := in.pending[id]
	delete(in.pending, id)
	return r
}

// Session is one console conversation.
type Session struct {
	Handler *bot.Handler
	Store   ledger.Store
	Inbox   *Inbox
	In      io.Reader
	Out     io.Writer

	actor   ledger.Person
	buttons []bot.Button
	lines   *bufio.Scanner
	// told is how many waiting messages each other person had when the session last said so.
	told map[int64]int
}

// Run reads commands until end of input. It works the same on a pipe as on a terminal.
func (s *Session) Run(ctx context.Context, email string) error {
	s.lines = bufio.NewScanner(s.In)
	s.lines.Buffer(make([]byte, 64*1024), bot.MaxCommandBytes*2)
	s.told = map[int64]int{}
	if err := s.switchTo(ctx, email); err != nil {
		return err
	}
	fmt.Fprintln(s.Out, "Type a command (balance, history, request 50k <use case>, team, help), a button number, ':as EMAIL' to switch person, or ':quit'.")
	fmt.Fprintln(s.Out, "End a line with \\ to go on on the next one. Messages to other people wait here until you switch to them with ':as'; they are not kept after the console ends.")
	for {
		fmt.Fprintf(s.Out, "%s> ", s.actor.Email)
		line, ok := s.readLine()
		if !ok {
			fmt.Fprintln(s.Out)
			s.leaving()
			return nil
		}
		switch {
		case line == "":
			continue
		case line == ":quit" || line == ":q":
			s.leaving()
			return nil
		case strings.HasPrefix(line, ":as"):
			if err := s.switchTo(ctx, strings.TrimSpace(strings.TrimPrefix(line, ":as"))); err != nil {
				fmt.Fprintln(s.Out, ledger.ErrorMessage(err))
			}
			continue
		}
		if n, err := strconv.Atoi(line); err == nil {
			s.press(ctx, n)
			continue
		}
		s.show(ctx, s.Handler.Command(ctx, s.actor, line))
		s.showInbox(ctx)
	}
}

// readLine reads one line of input; a line ending with a backslash goes on on the next,
// so text of several lines can be typed (the line breaks are kept).
func (s *Session) readLine() (string, bool) {
	var parts []string
	for s.lines.Scan() {
		line := strings.TrimRight(s.lines.Text(), " \t\r")
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			parts = append(parts, strings.TrimRight(more, " \t"))
			fmt.Fprint(s.Out, "… ")
			continue
		}
		parts = append(parts, line)
		return strings.TrimSpace(strings.Join(parts, "\n")), true
	}
	if len(parts) > 0 {
		return strings.TrimSpace(strings.Join(parts, "\n")), true
	}
	return "", false
}

// tellWaiting says, once per new message, that someone else has a message waiting and
// how to see it: the console cannot send it anywhere.
func (s *Session) tellWaiting() {
	for p, n := range s.Inbox.waiting(s.actor.ID) {
		if n > s.told[p.ID] {
			fmt.Fprintf(s.Out, "📨 %s has %s waiting: switch to them with ':as %s' to see %s.\n", p.Name, count(n, "message", "messages"), p.Email,
				map[bool]string{true: "it", false: "them"}[n == 1])
		}
		s.told[p.ID] = n
	}
}

// leaving says which messages to others were never shown, since they are not kept.
func (s *Session) leaving() {
	var names []string
	total := 0
	for p, n := range s.Inbox.waiting(s.actor.ID) {
		names = append(names, p.Name)
		total += n
	}
	if total > 0 {
		slices.Sort(names)
		fmt.Fprintf(s.Out, "%s for %s %s not shown; the console does not keep them after it ends.\n",
			count(total, "message", "messages"), strings.Join(names, ", "), map[bool]string{true: "was", false: "were"}[total == 1])
	}
}

func count(n int, singular, plural string) string {
	if n == 1 {
		return "1 " + singular
	}
	return ledger.FormatCredits(int64(n)) + " " + plural
}

// switchTo makes email the person at the keyboard and shows what waited for them.
func (s *Session) switchTo(ctx context.Context, email string) error {
	if email == "" {
		return ledger.Errorf(ledger.Invalid, "usage: :as EMAIL")
	}
	p, err := s.Store.PersonByEmail(ctx, email)
	if err != nil {
		return err
	}
	s.actor = p
	s.buttons = nil
	delete(s.told, p.ID)
	fmt.Fprintf(s.Out, "You are now %s (%s, %s).\n", p.Name, p.Email, p.Team)
	s.showInbox(ctx)
	return nil
}

func (s *Session) showInbox(ctx context.Context) {
	msgs := s.Inbox.take(s.actor.ID)
	if len(msgs) > 0 {
		fmt.Fprintf(s.Out, "📬 %s:\n", count(len(msgs), "new message", "new messages"))
		for _, m := range msgs {
			s.show(ctx, m)
		}
	}
	s.tellWaiting()
}

// show prints a reply; its buttons become the ones numbers press. A modal is filled in
// field by field and submitted.
func (s *Session) show(ctx context.Context, r bot.Reply) {
	s.render(r)
	if r.Modal != nil {
		s.fill(ctx, r.Modal)
	}
}

func (s *Session) render(r bot.Reply) {
	text, buttons := Render(r, 1)
	fmt.Fprint(s.Out, text)
	if len(buttons) > 0 {
		s.buttons = buttons
	}
}

func (s *Session) press(ctx context.Context, n int) {
	switch {
	case len(s.buttons) == 0:
		fmt.Fprintf(s.Out, "There are no buttons to press yet: %d would press a button numbered [%d] in a message that has buttons.\n", n, n)
		return
	case len(s.buttons) == 1 && n != 1:
		fmt.Fprintf(s.Out, "There is no button %d here: the last message with buttons has only [1].\n", n)
		return
	case n < 1 || n > len(s.buttons):
		fmt.Fprintf(s.Out, "There is no button %d here. Buttons are numbered [1] to [%d] in the last message that had any.\n", n, len(s.buttons))
		return
	}
	b := s.buttons[n-1]
	s.show(ctx, s.Handler.Act(ctx, s.actor, b.Action, nil))
	s.showInbox(ctx)
}

// fill asks a form's fields one at a time and checks each as it is entered, asking again
// until it is right; a field another package checks only on submission is asked again
// then, with its message, keeping the fields that were right. Empty input on a required
// field that is still wrong, or the end of input, cancels.
func (s *Session) fill(ctx context.Context, m *bot.Modal) {
	form := map[string]string{}
	ask := func(in bot.Input, problem string) bool {
		label := in.Label
		if in.Optional && !strings.Contains(strings.ToLower(label), "optional") {
			label += " (optional)"
		}
		if in.Multiline {
			label += ` (end a line with \ to go on on the next)`
		}
		for tries := 0; ; tries++ {
			if problem != "" {
				fmt.Fprintf(s.Out, "  %s\n", plain(problem))
			}
			fmt.Fprintf(s.Out, "%s: ", label)
			v, ok := s.readLine()
			if !ok || (tries > 0 && v == "" && !in.Optional) {
				fmt.Fprintln(s.Out, "\nCancelled.")
				return false
			}
			form[in.ID] = v
			problem = s.Handler.FieldErrors(m.Action, form)[in.ID]
			if problem == "" {
				return true
			}
		}
	}
	for _, in := range m.Inputs {
		if !ask(in, "") {
			return
		}
	}
	for range 5 {
		r := s.Handler.Act(ctx, s.actor, m.Action, form)
		if len(r.Errors) == 0 {
			s.render(r)
			return
		}
		for _, in := range m.Inputs {
			if msg, bad := r.Errors[in.ID]; bad && !ask(in, msg) {
				return
			}
		}
	}
	fmt.Fprintln(s.Out, "Cancelled.")
}
