package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
	"github.com/tokenpay/tokenpay/nudges"
)

// actor names who ran an admin command in the audit log, "cli:<os user>": the user behind
// sudo, else the login, else the account the process runs as (by uid when it has no
// name), so that every grant, key change, import, erasure or restore traces to a person.
func (a *app) actor() string {
	for _, k := range []string{"SUDO_USER", "USER", "LOGNAME"} {
		if u := a.getenv(k); u != "" {
			return "cli:" + u
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli:uid:" + strconv.Itoa(os.Getuid())
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version this binary was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi, ok := debug.ReadBuildInfo()
			fmt.Fprint(a.stdout, formatVersion(bi, ok))
			return nil
		},
	}
}

// formatVersion renders build information: the module version ("(devel)" for a build from
// a checkout), the VCS revision and commit time when the build recorded them, and the Go
// version.
func formatVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return fmt.Sprintf("tokenpay (unknown version: no build information)\ngo        %s\n", runtime.Version())
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "tokenpay %s\n", version)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (with uncommitted changes)"
		}
		fmt.Fprintf(&b, "commit    %s\n", rev)
	}
	if at := settings["vcs.time"]; at != "" {
		fmt.Fprintf(&b, "committed %s\n", at)
	}
	goVersion := bi.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	fmt.Fprintf(&b, "go        %s\n", goVersion)
	if cgo := settings["CGO_ENABLED"]; cgo != "" {
		fmt.Fprintf(&b, "cgo       %s\n", map[string]string{"1": "enabled", "0": "disabled"}[cgo])
	}
	return b.String()
}

func (a *app) healthcheckCommand() *cobra.Command {
	var target string
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the local server answers /readyz (for Docker and systemd probes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if target == "" {
				target = readyzURL(a.getenv("TOKENPAY_ADDR"))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
			if err != nil {
				return usageError(fmt.Sprintf("--url %q: %v", target, err))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck %s: %w", target, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck %s: %s: %s", target, resp.Status, strings.TrimSpace(string(body)))
			}
			fmt.Fprintf(a.stdout, "%s: %s\n", target, strings.TrimSpace(string(body)))
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "url", "", "readiness URL (default: /readyz on $TOKENPAY_ADDR, or http://127.0.0.1:8080)")
	return cmd
}

// readyzURL turns a listen address (":8080", "0.0.0.0:9000", "[::]:80") into the URL a
// probe on the same machine uses.
func readyzURL(addr string) string {
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/readyz"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}

func (a *app) restoreCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the database with a backup; refuses to discard newer work without --force; on PostgreSQL, use pg_restore",
		Long: "Replace the live database (--db, $TOKENPAY_DB) with a backup made by 'tokenpay backup'.\n" +
			"The backup is checked first and never changed. If the live database holds ledger transactions or\n" +
			"audit entries after the backup's last ones, or a later schema, or a tokenpay process is running on it,\n" +
			"nothing is changed unless --force is given. The live database is saved beside itself before it is replaced.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.onPostgres() {
				return ledger.Errorf(ledger.Invalid, "%s", pgRestoreAdvice)
			}
			ctx := cmd.Context()
			backup, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			live, err := filepath.Abs(a.dbPath)
			if err != nil {
				return err
			}
			if backup == live {
				return usageError("that is the live database itself; restore from a backup file")
			}
			bm, err := sqlite.InspectBackup(ctx, backup)
			if err != nil {
				return err
			}
			latest, err := sqlite.LatestMigration()
			if err != nil {
				return err
			}
			if bm.Migration > latest {
				return ledger.Errorf(ledger.Invalid, "%s was made by a newer tokenpay (schema version %d; this one knows %d): upgrade tokenpay first", backup, bm.Migration, latest)
			}
			_, statErr := os.Stat(live)
			existed := statErr == nil
			a.initDB = true // an empty live file is one restore exists to mend
			db, err := a.openSQLite(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			lm, err := db.Marks(ctx)
			if err != nil {
				return err
			}
			// Workers beat every sixth of the replica timeout (5 s by default); one seen
			// within it is a process still running.
			active, err := db.ActiveWorkers(ctx, time.Now().Add(-max(nudges.StaleAfter, a.replicaTimeout)))
			if err != nil {
				return err
			}
			if len(active) > 0 && !force {
				fmt.Fprintf(a.stderr, "tokenpay: %s is in use by a running tokenpay process (%s).\n", live, strings.Join(active, ", "))
				fmt.Fprintln(a.stderr, "Nothing was changed. Stop it first (systemctl stop tokenpay, docker stop), or run again with --force.")
				return exitError{1}
			}
			newer := lm.NewerThan(bm)
			if len(newer) > 0 && !force {
				fmt.Fprintf(a.stderr, "tokenpay: %s is newer than the backup %s; it holds:\n", live, backup)
				for _, r := range newer {
					fmt.Fprintf(a.stderr, "  - %s\n", r)
				}
				fmt.Fprintln(a.stderr, "Nothing was changed. To discard that and restore anyway, run again with --force (the live database is saved first).")
				return exitError{1}
			}
			saved := ""
			if existed {
				saved = live + ".before-restore-" + time.Now().UTC().Format("20060102T150405.000Z") + ".db"
				if err := db.Backup(ctx, saved); err != nil {
					return fmt.Errorf("save the live database before restoring: %w", err)
				}
			}
			if err := db.Restore(ctx, backup); err != nil {
				return err
			}
			detail := fmt.Sprintf("last transaction #%d; schema %d", bm.LastTx, bm.Migration)
			if len(newer) > 0 {
				detail += "; forced over: " + strings.Join(newer, "; ")
			}
			if err := db.Audit(ctx, a.actor(), "restore", backup, detail); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Restored %s from %s (last transaction #%d", live, backup, bm.LastTx)
			if !bm.LastTxAt.IsZero() {
				fmt.Fprintf(a.stdout, " of %s", bm.LastTxAt.Format(time.RFC3339))
			}
			fmt.Fprintln(a.stdout, ").")
			if saved != "" {
				fmt.Fprintf(a.stdout, "The database as it was before is saved in %s.\n", saved)
			}
			return a.verifyAfter(ctx, db, "restore")
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "restore even over newer work or a running process (the live database is saved first)")
	return cmd
}

// verifyAfter runs ledger verify after an operation that rewrote the database.
func (a *app) verifyAfter(ctx context.Context, db ledger.Store, what string) error {
	violations, err := db.Verify(ctx)
	if err != nil {
		return err
	}
	for _, v := range violations {
		fmt.Fprintln(a.stdout, v)
	}
	if len(violations) > 0 {
		fmt.Fprintf(a.stderr, "tokenpay: ledger verify found %s after the %s\n", count(len(violations), "violation", "violations"), what)
		return exitError{1}
	}
	fmt.Fprintln(a.stdout, "ledger verified: postings balance, balances match postings, no grant over-spent")
	return nil
}

func (a *app) peopleExportCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "export EMAIL",
		Short: "Print everything stored about a person as JSON (a data subject access request); audited",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.requireDB(); err != nil {
				return err
			}
			return a.withDB(cmd, func(db ledger.Store) error {
				d, err := db.ExportPerson(cmd.Context(), args[0], a.actor())
				if err != nil {
					return err
				}
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(d)
			})
		},
	}
}

func (a *app) peopleForgetCommand() *cobra.Command {
	var yes, compact bool
	cmd := &cobra.Command{
		Use:   "forget EMAIL --yes",
		Short: "Erase a person's personal data, keeping ledger amounts under a pseudonym; audited",
		Long: "Erase a person's name, email, chat identities and time zone, and the texts they wrote (impacts,\n" +
			"request use cases, lesson reflections). Their ledger amounts stay under a pseudonym such as\n" +
			"forgotten-12@invalid, so totals stay true and 'ledger verify' passes. It cannot be undone.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return usageError(fmt.Sprintf("forgetting %s cannot be undone; run again with --yes", args[0]))
			}
			if compact && a.onPostgres() {
				return usageError(pgCompactAdvice)
			}
			ctx := cmd.Context()
			if err := a.requireDB(); err != nil {
				return err
			}
			pol, err := a.policy()
			if err != nil {
				return err
			}
			return a.withDB(cmd, func(db ledger.Store) error {
				res, err := db.Forget(ctx, args[0], a.actor())
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Forgot %s: the person is now %s.\n", args[0], res.Pseudonym)
				fmt.Fprintf(a.stdout, "Erased %s, %s and %s; withdrew %s.\n",
					count(int(res.Impacts), "impact text", "impact texts"), count(int(res.Requests), "request use case", "request use cases"),
					count(int(res.Lessons), "lesson reflection", "lesson reflections"), count(int(res.Messages), "queued message", "queued messages"))
				if res.Prompts == 1 {
					fmt.Fprintln(a.stdout, "1 shared prompt stays in the library, no longer credited by name.")
				} else if res.Prompts > 1 {
					fmt.Fprintf(a.stdout, "%d shared prompts stay in the library, no longer credited by name.\n", res.Prompts)
				}
				fmt.Fprintf(a.stdout, "Ledger amounts are kept under %s. Remove %s from the directory you import, or the next import adds them again.\n",
					res.Pseudonym, args[0])
				if c, ok := db.(compacter); ok && compact {
					if err := c.Compact(ctx); err != nil {
						return err
					}
					fmt.Fprintln(a.stdout, "Compacted the database file: no earlier copy of the erased data is left in it.")
				} else if !a.onPostgres() {
					fmt.Fprintln(a.stdout, "Earlier copies may remain in free space inside the database file until it is compacted (--compact).")
				}
				switch {
				case a.onPostgres():
					fmt.Fprintln(a.stdout, "PostgreSQL keeps earlier row versions until autovacuum reclaims them, and its write-ahead log "+
						"(with any WAL archive or standby) until it is recycled.")
				case !res.WALCleared:
					fmt.Fprintln(a.stdout, "The write-ahead log was in use; it is cleared at the next quiet checkpoint.")
				}
				fmt.Fprintln(a.stdout, "Backups made before now still hold the data until they are rotated out.")
				if roles := policyRoles(pol, args[0]); len(roles) > 0 {
					fmt.Fprintf(a.stderr, "tokenpay: warning: the policy %s still names %s in %s; remove them there and restart serve.\n",
						orDash(a.policyPath), args[0], strings.Join(roles, " and "))
				}
				return a.verifyAfter(ctx, db, "erasure")
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm the erasure")
	cmd.Flags().BoolVar(&compact, "compact", false, "also rewrite the database file (VACUUM) so no earlier copy remains; writers wait meanwhile")
	return cmd
}

func (a *app) auditCommand() *cobra.Command {
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log of admin actions, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usageError("--limit must be at least 1")
			}
			db, pol, err := a.existingEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			entries, err := db.AuditLog(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				for _, e := range entries {
					if err := enc.Encode(auditJSON{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, Subject: e.Subject, Detail: e.Detail}); err != nil {
						return err
					}
				}
				return nil
			}
			if len(entries) == 0 {
				fmt.Fprintln(a.stdout, "The audit log is empty.")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WHEN\tWHO\tACTION\tSUBJECT\tDETAIL")
			for _, e := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At.In(pol.Location()).Format("2006-01-02 15:04 MST"), e.Actor, e.Action,
					e.Subject, strings.ReplaceAll(e.Detail, "\n", " "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many entries to show")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}

type auditJSON struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Subject string    `json:"subject"`
	Detail  string    `json:"detail"`
}
