package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/api"
	"github.com/tokenpay/tokenpay/ledger/period"
)

func (a *app) grantCommand() *cobra.Command {
	var reason, key string
	cmd := &cobra.Command{
		Use:   "grant EMAIL AMOUNT --reason R",
		Short: "Grant credits to a person until the end of the period (an adjustment)",
		Long: `Grant credits to a person until the end of the period (an adjustment).

AMOUNT is read as people type it: 25000, 25,000, 25.000, 25k, 25 k, 1.5M, 25k credits.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// "25 k" and "25k credits" arrive as several arguments.
			amount, err := ledger.ParseAmount(strings.Join(args[1:], " "))
			if err != nil {
				return err
			}
			if reason == "" {
				return ledger.Errorf(ledger.Invalid, "say why with --reason, e.g. --reason \"pilot project\"")
			}
			if err := a.requireDB(); err != nil {
				return err
			}
			db, pol, err := a.env(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			p, err := db.PersonByEmail(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if key == "" {
				key = "cli-grant:" + randomID()
			}
			now := a.now()
			g, err := db.Grant(cmd.Context(), ledger.GrantInput{Key: key, PersonID: p.ID, Kind: ledger.GrantAdjustment,
				Amount: amount, ExpiresAt: pol.PeriodEnd(now), Reason: reason, Actor: a.actor()})
			if err != nil {
				return err
			}
			if err := db.Audit(cmd.Context(), a.actor(), "grant", p.Email, fmt.Sprintf("%s credits: %s", ledger.FormatCredits(amount), reason)); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Granted %s credits to %s until %s (grant %d).\n", ledger.FormatCredits(g.Amount), p.Email,
				g.ExpiresAt.In(pol.Location()).Format("2 Jan 2006 15:04 MST"), g.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the credits are granted (required; kept in the ledger)")
	cmd.Flags().StringVar(&key, "key", "", "idempotency key: repeating a grant with the same key grants once")
	return cmd
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (a *app) balanceCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "balance EMAIL",
		Short: "Show a person's balance for the current period",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, pol, err := a.existingEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			p, err := db.PersonByEmail(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			now := a.now()
			b, err := db.Balance(cmd.Context(), p.ID, pol.PeriodStart(now), pol.PeriodEnd(now))
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(api.NewBalanceJSON(b))
			}
			fmt.Fprintf(a.stdout, "%s (%s)\navailable  %s\nspent      %s\noverage    %s\nperiod     %s to %s\n", p.Name, p.Email,
				ledger.FormatCredits(b.Available), ledger.FormatCredits(b.Spent), ledger.FormatCredits(b.Overage),
				b.PeriodStart.In(pol.Location()).Format("2006-01-02"), b.PeriodEnd.In(pol.Location()).Format("2006-01-02"))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (the same fields as the HTTP balance API)")
	return cmd
}

func (a *app) apikeyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Manage API keys for AI gateways"}
	cmd.AddCommand(&cobra.Command{
		Use:   "create NAME",
		Short: "Create an API key; it is printed once, on the last line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withDB(cmd, func(db ledger.Store) error {
				key, k, err := db.CreateAPIKey(cmd.Context(), args[0], a.actor())
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Created API key %q (id %d). Store it now: only its hash is kept.\n%s\n", k.Name, k.ID, key)
				return nil
			})
		},
	}, a.apikeyListCommand(), &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke every key with this name",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withDB(cmd, func(db ledger.Store) error {
				n, err := db.RevokeAPIKey(cmd.Context(), args[0], a.actor())
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Revoked %s named %q.\n", count(int(n), "key", "keys"), args[0])
				return nil
			})
		},
	})
	return cmd
}

func (a *app) ledgerCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "ledger", Short: "Check and export the ledger"}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Check every ledger invariant; exit 1 on any violation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.requireDB(); err != nil {
				return err
			}
			return a.withDB(cmd, func(db ledger.Store) error {
				violations, err := db.Verify(cmd.Context())
				if err != nil {
					return err
				}
				if len(violations) > 0 {
					for _, v := range violations {
						fmt.Fprintln(a.stdout, v)
					}
					fmt.Fprintf(a.stderr, "tokenpay: ledger verify found %s\n", count(len(violations), "violation", "violations"))
					return exitError{1}
				}
				fmt.Fprintln(a.stdout, "ledger verified: postings balance, balances match postings, no grant over-spent")
				return nil
			})
		},
	}, &cobra.Command{
		Use:   "export",
		Short: "Write every posting as CSV to stdout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.requireDB(); err != nil {
				return err
			}
			return a.withDB(cmd, func(db ledger.Store) error {
				return db.ExportPostings(cmd.Context(), a.stdout)
			})
		},
	}, a.ledgerRollupCommand())
	return cmd
}

// ledgerRollupCommand is `tokenpay ledger rollup [--dry-run]`: the nightly usage-rollup job,
// run now (README: "History: old usage is rolled up").
func (a *app) ledgerRollupCommand() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "rollup",
		Short: "Roll up usage older than usage.retention_months into one row per person, model and day (same sums)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.requireDB(); err != nil {
				return err
			}
			pol, err := a.policy()
			if err != nil {
				return err
			}
			return a.withDB(cmd, func(db ledger.Store) error {
				res, err := period.RollUp(cmd.Context(), db, pol, a.now(), a.actor(), dryRun)
				if err != nil {
					return err
				}
				text := period.RollupText(pol, res)
				fmt.Fprintln(a.stdout, strings.ToUpper(text[:1])+text[1:]+".")
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be rolled up and change nothing")
	return cmd
}

func (a *app) backupCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the live database (safe while serving); on PostgreSQL, use pg_dump",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.onPostgres() {
				return ledger.Errorf(ledger.Invalid, "%s", pgBackupAdvice)
			}
			target, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if _, err := os.Stat(target); err == nil {
				return ledger.Errorf(ledger.Invalid, "%s already exists; choose a new file name", target)
			}
			db, err := a.openSQLite(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if err := db.Backup(cmd.Context(), target); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Backed up %s to %s.\n", a.dbPath, target)
			return nil
		},
	}
}
