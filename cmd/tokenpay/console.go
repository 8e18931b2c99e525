package main

import (
	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/bot/console"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/prompts"
)

// newHandler wires the conversation core; every platform and the console share it. The
// prompt library answers prompts, share and learn; seed it first (promptLibrary.Seed).
func (a *app) newHandler(db ledger.Store, pol *policy.Policy, notify bot.Notifier) *bot.Handler {
	h := &bot.Handler{Store: db, Policy: pol, Now: a.now, Log: a.log, Notify: notify}
	a.promptLibrary(db, pol).Register(h)
	return h
}

// promptLibrary is the shared prompt library and the fluency path over db.
func (a *app) promptLibrary(db ledger.Store, pol *policy.Policy) *prompts.Library {
	return &prompts.Library{Store: db, Policy: pol, Now: a.now, Log: a.log}
}

func (a *app) consoleCommand() *cobra.Command {
	var as string
	cmd := &cobra.Command{
		Use:   "console --as EMAIL",
		Short: "Talk to tokenpay in the terminal as a person from the directory (no Slack or Teams needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if as == "" {
				return usageError("say who you are with --as EMAIL (an email from the directory)")
			}
			if err := a.requireDB(); err != nil {
				return err
			}
			db, pol, err := a.env(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			// Idempotent: the first start loads the starter library, later ones find it there.
			if err := a.promptLibrary(db, pol).Seed(cmd.Context()); err != nil {
				return err
			}
			inbox := console.NewInbox()
			s := &console.Session{Handler: a.newHandler(db, pol, inbox), Store: db, Inbox: inbox, In: a.stdin, Out: a.stdout}
			return s.Run(cmd.Context(), as)
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "email of the person you play (switch inside with ':as EMAIL')")
	return cmd
}
