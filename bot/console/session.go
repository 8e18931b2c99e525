package console

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// Inbox is the console's notifier: messages wait per person and are shown when that person
// is at the keyboard (after `:as`).
type Inbox struct {
	mu      sync.Mutex
	pending map[int64][]bot.Reply
	posted  map[int64]bool // approval messages already delivered, by request id
}

// NewInbox returns an empty inbox.
func NewInbox() *Inbox {
	return &Inbox{pending: map[int64][]bot.Reply{}, posted: map[int64]bool{}}
}

// Direct implements bot.Notifier.
func (in *Inbox) Direct(_ context.Context, to ledger.Person, r bot.Reply) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.pending[to.ID] = append(in.pending[to.ID], r)
	return nil
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
	Store   *sqlite.DB
	Inbox   *Inbox
	In      io.Reader
	Out     io.Writer

	actor   ledger.Person
	buttons []bot.Button
	lines   *bufio.Scanner
}

// Run reads commands until end of input. It works the same on a pipe as on a terminal.
func (s *Session) Run(ctx context.Context, email string) error {
	s.lines = bufio.NewScanner(s.In)
	s.lines.Buffer(make([]byte, 64*1024), bot.MaxCommandBytes*2)
	if err := s.switchTo(ctx, email); err != nil {
		return err
	}
	fmt.Fprintln(s.Out, "Type a command (balance, history, request 50k <use case>, team, help), a button number, ':as EMAIL' to switch person, or ':quit'.")
	for {
		fmt.Fprintf(s.Out, "%s> ", s.actor.Email)
		line, ok := s.readLine()
		if !ok {
			fmt.Fprintln(s.Out)
			return nil
		}
		switch {
		case line == "":
			continue
		case line == ":quit" || line == ":q":
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

func (s *Session) readLine() (string, bool) {
	if !s.lines.Scan() {
		return "", false
	}
	return strings.TrimSpace(s.lines.Text()), true
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
	fmt.Fprintf(s.Out, "You are now %s (%s, %s).\n", p.Name, p.Email, p.Team)
	s.showInbox(ctx)
	return nil
}

func (s *Session) showInbox(ctx context.Context) {
	msgs := s.Inbox.take(s.actor.ID)
	if len(msgs) == 0 {
		return
	}
	fmt.Fprintf(s.Out, "📬 %d new message(s):\n", len(msgs))
	for _, m := range msgs {
		s.show(ctx, m)
	}
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
	if n < 1 || n > len(s.buttons) {
		fmt.Fprintf(s.Out, "There is no button %d here. Buttons are numbered [1] to [%d] in the last message that had any.\n", n, len(s.buttons))
		return
	}
	b := s.buttons[n-1]
	s.show(ctx, s.Handler.Act(ctx, s.actor, b.Action, nil))
	s.showInbox(ctx)
}

func (s *Session) fill(ctx context.Context, m *bot.Modal) {
	form := map[string]string{}
	for _, in := range m.Inputs {
		label := in.Label
		if in.Optional && !strings.Contains(strings.ToLower(label), "optional") {
			label += " (optional)"
		}
		fmt.Fprintf(s.Out, "%s: ", label)
		v, ok := s.readLine()
		if !ok {
			fmt.Fprintln(s.Out, "\nCancelled.")
			return
		}
		form[in.ID] = v
	}
	s.render(s.Handler.Act(ctx, s.actor, m.Action, form))
}
