package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

// app is what every command shares: standard streams, environment, flags, clock, logger.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	dbPath     string
	policyPath string
	logLevel   string
	// initDB allows opening a zero-length database file (--init): without it such a file
	// is refused, since SQLite would quietly start an empty ledger in it.
	initDB bool
	log    zerolog.Logger
	// quarantineBound counts events a quarantine bound refused or gave up (set by serve,
	// for its metrics).
	quarantineBound func(bound string, n int)
	now             func() time.Time
	// replicaTimeout is how long a silent tokenpay process keeps its job runs and
	// messages in flight before the others take them over (TOKENPAY_REPLICA_TIMEOUT;
	// 0: nudges.StaleAfter).
	replicaTimeout time.Duration
}

var negativeNumber = regexp.MustCompile(`-[0-9][0-9.,_km]*`)

// exitError carries an exit code for a failure already explained on stdout/stderr.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// Run runs one tokenpay command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCommand()
	root.SetArgs(dashFlags(args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(stderr, "tokenpay:", userMessage(err))
	if ledger.ErrorCode(err) == ledger.Internal {
		a.log.Debug().Err(err).Msg("command failed")
	}
	return 1
}

// dashFlags turns "—reason" and "–reason" into "--reason": word processors, chat clients
// and macOS replace "--" with a dash when a command is typed or copied through them.
func dashFlags(args []string) []string {
	out := make([]string, len(args))
	for i, arg := range args {
		out[i] = arg
		for _, dash := range []string{"\u2014", "\u2013"} {
			if strings.HasPrefix(arg, dash) && len(arg) > len(dash) {
				out[i] = "--" + strings.TrimLeft(strings.TrimPrefix(arg, dash), "\u2014\u2013-")
			}
		}
	}
	return out
}

// userMessage is what the operator reads: the error's full text, wrapping included, so a
// ledger error keeps the context a command added ("people.csv: nothing was imported: line
// 3: ..."). Chat users never see this path.
func userMessage(err error) string {
	return err.Error()
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "tokenpay",
		Short:         "AI tokens as part of compensation, in Slack and Teams",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup()
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		// "-5" parses as a flag; say what is wrong with the amount instead.
		if m := negativeNumber.FindString(err.Error()); m != "" {
			return ledger.Errorf(ledger.Invalid, "amount must be a positive whole number of credits, not %s", m)
		}
		return fmt.Errorf("%w (see --help)", err)
	})
	root.PersistentFlags().StringVar(&a.dbPath, "db", "", "the ledger: a SQLite database file, or a postgres:// URL (default $TOKENPAY_DB or tokenpay.db)")
	root.PersistentFlags().StringVar(&a.policyPath, "policy", "", "policy YAML file (default $TOKENPAY_POLICY, else built-in defaults)")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().BoolVar(&a.initDB, "init", false, "accept a zero-length database file and start a new ledger in it")
	root.AddCommand(a.serveCommand(), a.demoCommand(), a.consoleCommand(),
		a.peopleCommand(), a.usageCommand(), a.grantCommand(), a.balanceCommand(), a.apikeyCommand(),
		a.ledgerCommand(), a.policyCommand(), a.backupCommand(), a.manifestCommand(), a.jobsCommand(), a.segmentsCommand())
	root.AddCommand(a.versionCommand(), a.restoreCommand(), a.auditCommand(), a.healthcheckCommand())
	root.AddCommand(a.connectorsCommand(), a.loginLinkCommand())
	plainArgs(root)
	return root
}

// plainArgs replaces cobra's argument errors ("accepts 1 arg(s), received 0", "unknown
// command "x" for "tokenpay serve"") with a sentence that shows how to type the command.
func plainArgs(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if check(c, args) == nil {
				return nil
			}
			usage := strings.TrimSuffix(c.UseLine(), " [flags]")
			quoted := make([]string, len(args))
			for i, arg := range args {
				quoted[i] = strconv.Quote(arg)
			}
			switch {
			case len(args) == 0:
				return usageError(fmt.Sprintf("arguments missing: type %s (see --help)", usage))
			case usage == c.CommandPath():
				return usageError(fmt.Sprintf("%s takes no arguments; remove %s (see --help)", usage, strings.Join(quoted, ", ")))
			default:
				return usageError(fmt.Sprintf("wrong number of arguments (%s): type %s (see --help)", strings.Join(quoted, ", "), usage))
			}
		}
	}
	// A group such as "tokenpay policy" would print its help and exit 0 for "tokenpay
	// policy show"; made runnable, cobra refuses the unknown subcommand and suggests one.
	if !cmd.Runnable() && cmd.HasSubCommands() && cmd.HasParent() {
		cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		cmd.SuggestionsMinimumDistance = 2
		cmd.Args = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
			}
			return usageError(msg + " (see --help)")
		}
	}
	for _, sub := range cmd.Commands() {
		plainArgs(sub)
	}
}

// setup reads the environment once flags are parsed.
func (a *app) setup() error {
	if a.dbPath == "" {
		a.dbPath = a.getenv("TOKENPAY_DB")
	}
	if a.dbPath == "" {
		a.dbPath = "tokenpay.db"
	}
	if a.policyPath == "" {
		a.policyPath = a.getenv("TOKENPAY_POLICY")
	}
	if v := a.getenv("TOKENPAY_REPLICA_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return fmt.Errorf("TOKENPAY_REPLICA_TIMEOUT=%q: use a duration of at least 1s, such as 30s", v)
		}
		a.replicaTimeout = d
	}
	level, err := zerolog.ParseLevel(a.logLevel)
	if err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", a.logLevel)
	}
	a.log = zerolog.New(a.stderr).Level(level).With().Timestamp().Logger()
	a.now = time.Now
	if fixed := a.getenv("TOKENPAY_NOW"); fixed != "" {
		t, err := time.Parse(time.RFC3339, fixed)
		if err != nil {
			return fmt.Errorf("TOKENPAY_NOW=%q is not an RFC 3339 time such as 2026-11-27T09:00:00Z", fixed)
		}
		a.now = func() time.Time { return t }
	}
	return nil
}

// usageError is a mistake in how a command was called.
func usageError(msg string) error { return ledger.Errorf(ledger.Invalid, "%s", msg) }

func (a *app) policy() (*policy.Policy, error) {
	p, err := policy.Load(a.policyPath)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", a.policyPath, err)
	}
	return p, nil
}

// env opens the database and reads the policy: what most commands need.
func (a *app) env(ctx context.Context) (ledger.Store, *policy.Policy, error) {
	pol, err := a.policy()
	if err != nil {
		return nil, nil, err
	}
	db, err := a.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	return db, pol, nil
}

func newIngestor(db ledger.Store, pol *policy.Policy, now func() time.Time) *usage.Ingestor {
	return &usage.Ingestor{Store: db, Policy: pol, Now: now, Credits: func(model string, in, out int64) (int64, error) {
		return pol.WeightFor(model).Credits(in, out)
	}, CreditsCached: func(model string, in, cached, out int64) (int64, error) {
		return pol.WeightFor(model).CreditsCached(in, cached, out)
	}, Period: func(t time.Time) (time.Time, time.Time) { return pol.PeriodStart(t), pol.PeriodEnd(t) }}
}
