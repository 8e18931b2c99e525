package slack

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/slack-go/slack"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

// slackID matches user ids; anything else is never put inside <@…>.
var slackID = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)

func mention(p ledger.Person) string {
	if slackID.MatchString(p.SlackUserID) {
		return "<@" + p.SlackUserID + ">"
	}
	return escape(p.Name)
}

// Approval implements bot.Notifier. A request is posted as a short parent message (in the
// approvals channel, or in each decider's DM when none is set) with the details and the
// buttons in its thread, mentioning who can decide. Later calls update both in place.
func (a *App) Approval(ctx context.Context, v bot.RequestView) error {
	if a.stopped.Load() {
		return fmt.Errorf("request %d: %w", v.Request.ID, errStopped)
	}
	prefix := fmt.Sprintf("request:%d:", v.Request.ID)
	known, err := a.Store.MessageRefsWithPrefix(ctx, Platform, prefix)
	if err != nil {
		return err
	}
	targets := map[string]bool{}
	if v.Request.Status == ledger.RequestPending {
		if a.Config.ApprovalsChannel != "" {
			targets[a.Config.ApprovalsChannel] = true
		} else {
			for _, d := range v.Deciders {
				if d.SlackUserID == "" {
					continue
				}
				ch, err := a.dm(ctx, d.SlackUserID)
				if err != nil {
					return a.checkRevoked(ctx, err)
				}
				targets[ch] = true
			}
		}
	}
	for _, ref := range known {
		targets[ref.Channel] = true
	}
	if len(targets) == 0 {
		return fmt.Errorf("request %d: %w", v.Request.ID, errNoChannel)
	}
	parent, thread := approvalMessages(v)
	// The parent's text is what a push notification shows: who asks for how much, for what.
	text := parentText(v)
	var errs []error
	for ch := range targets {
		subject := prefix + ch
		ref, ok := known[subject]
		if !ok {
			if err := a.postApproval(ctx, subject, ch, text, parent, thread); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if _, _, _, err := a.Client.UpdateMessageContext(ctx, ch, ref.MessageID, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(parent...)); err != nil {
			errs = append(errs, fmt.Errorf("chat.update parent of request %d: %w", v.Request.ID, err))
		}
		if _, _, _, err := a.Client.UpdateMessageContext(ctx, ch, ref.ThreadID, slack.MsgOptionText(Fallback(v.Message), false), slack.MsgOptionBlocks(thread...)); err != nil {
			errs = append(errs, fmt.Errorf("chat.update thread of request %d: %w", v.Request.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (a *App) postApproval(ctx context.Context, subject, ch, text string, parent, thread []slack.Block) error {
	_, ts, err := a.Client.PostMessageContext(ctx, ch, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(parent...))
	if err != nil {
		return fmt.Errorf("chat.postMessage approval parent: %w", err)
	}
	_, threadTS, err := a.Client.PostMessageContext(ctx, ch, slack.MsgOptionTS(ts), slack.MsgOptionText("Details and decision", false), slack.MsgOptionBlocks(thread...))
	if err != nil {
		return fmt.Errorf("chat.postMessage approval thread: %w", err)
	}
	return a.Store.SaveMessageRef(ctx, Platform, subject, ledger.MessageRef{Channel: ch, MessageID: ts, ThreadID: threadTS})
}

// parentText is the notification line of the parent message: the core's summary ("Ann
// asks for 50,000 credits: …") while pending, the outcome after.
func parentText(v bot.RequestView) string {
	if v.Request.Status == ledger.RequestPending && v.Message.Summary != "" {
		return clip(escape(v.Message.Summary), 300)
	}
	return fmt.Sprintf("Request #%d from %s for %s credits: %s", v.Request.ID, escape(v.Requester.Name),
		ledger.FormatCredits(v.Request.Amount), v.Request.Status)
}

// approvalMessages builds the parent (one line and a status) and the thread message
// (who is asked, then the core's details and buttons).
func approvalMessages(v bot.RequestView) (parent, thread []slack.Block) {
	status := ""
	if v.Request.Status == ledger.RequestPending {
		status = "Waiting for a decision: details and buttons in the thread."
	} else if n := len(v.Message.Blocks); n > 0 {
		if c, ok := v.Message.Blocks[n-1].(*bot.Context); ok {
			status = c.Text
		}
	}
	parent = []slack.Block{
		slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*Request #%d* from %s for *%s credits*", v.Request.ID, v.Requester.Name,
			ledger.FormatCredits(v.Request.Amount)), maxSectionText), nil, nil),
		slack.NewContextBlock("", mrkdwn(status, maxSectionText)),
	}
	if v.Request.Status == ledger.RequestPending && len(v.Deciders) > 0 {
		var who []string
		for _, d := range v.Deciders {
			who = append(who, mention(d))
		}
		// Built here, not from user text: the only place a mention is meant to ping.
		thread = append(thread, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType,
			strings.Join(who, " ")+", can you decide on this request?", false, false), nil, nil))
	}
	return parent, append(thread, Blocks(v.Message)...)
}
