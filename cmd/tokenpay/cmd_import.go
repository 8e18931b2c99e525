package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/directory"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

// maxListedLines bounds the quarantined and rejected lines `usage import` names.
const maxListedLines = 1000

func (a *app) openInput(name string) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(a.stdin), nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, ledger.Errorf(ledger.Invalid, "cannot open %s: %v", name, pathProblem(err))
	}
	return f, nil
}

func (a *app) peopleCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "people", Short: "Manage the directory"}
	cmd.AddCommand(&cobra.Command{
		Use:   "import FILE.csv",
		Short: "Upsert people by email from CSV: " + strings.Join(directory.Columns, ","),
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			in, err := a.openInput(args[0])
			if err != nil {
				return err
			}
			defer in.Close()
			db, pol, err := a.env(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			// The file is staged 5,000 rows at a time and applied in one transaction: any
			// size in bounded memory, still all or nothing. One import at a time per
			// database: another one in progress is waited for, and said so.
			imp, err := a.beginPeopleImport(ctx, db)
			if err != nil {
				return err
			}
			if err := directory.StreamCSV(in, 5000, func(part []ledger.PersonRecord) error { return imp.Stage(ctx, part) }); err != nil {
				if derr := imp.Discard(context.WithoutCancel(ctx)); derr != nil {
					a.log.Error().Err(derr).Msg("could not empty the people import's staging table")
				}
				return fmt.Errorf("%s: nothing was imported:\n%w", args[0], err)
			}
			res, err := imp.Apply(ctx)
			if err != nil {
				return fmt.Errorf("%s: nothing was imported:\n%w", args[0], err)
			}
			sum, err := period.Reset(ctx, db, pol, a.now())
			if err != nil {
				return err
			}
			replayed, waiting, err := newIngestor(db, pol, a.now).ReplayQuarantine(ctx)
			if err != nil {
				return err
			}
			if err := db.Audit(ctx, a.actor(), "people.import", args[0], fmt.Sprintf("%s new, %s updated", ledger.FormatCredits(int64(res.Created)), ledger.FormatCredits(int64(res.Updated)))); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Imported %s (%s new, %s updated). Period %s is open for everyone.\n",
				count(res.Created+res.Updated, "person", "people"), ledger.FormatCredits(int64(res.Created)), ledger.FormatCredits(int64(res.Updated)), sum.Period)
			if replayed+waiting > 0 {
				fmt.Fprintf(a.stdout, "Quarantined usage: %s replayed, %s still waiting for their person.\n",
					count(replayed, "event", "events"), ledger.FormatCredits(int64(waiting)))
			}
			return nil
		},
	})
	cmd.AddCommand(a.peopleExportCommand(), a.peopleForgetCommand(), a.peopleListCommand())
	return cmd
}

// beginPeopleImport begins a directory import; when another import holds the database
// for more than a second, it says so on stderr and waits for it (until ctx ends).
func (a *app) beginPeopleImport(ctx context.Context, db ledger.Directory) (ledger.PeopleImport, error) {
	first, cancel := context.WithTimeout(ctx, time.Second)
	imp, err := db.BeginPeopleImport(first)
	cancel()
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return imp, err
	}
	fmt.Fprintf(a.stderr, "tokenpay: another directory import is running; waiting for it to finish (one stopped half-way is taken over after %.0f minutes)\n",
		ledger.ImportIdleLimit.Minutes())
	return db.BeginPeopleImport(ctx)
}

func (a *app) usageCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{Use: "usage", Short: "Record token usage"}
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Post usage from CSV or JSONL (same fields as the HTTP API); '-' reads stdin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f := format
			if f == "" {
				f = strings.TrimPrefix(strings.ToLower(filepath.Ext(args[0])), ".")
			}
			var stream func(r io.Reader, n int, fn func([]usage.Item) error) error
			switch f {
			case "csv":
				stream = usage.StreamCSV
			case "jsonl", "ndjson":
				stream = usage.StreamJSONL
			default:
				return ledger.Errorf(ledger.Invalid, "cannot tell the format of %s; name it .csv or .jsonl, or pass --format csv|jsonl", args[0])
			}
			in, err := a.openInput(args[0])
			if err != nil {
				return err
			}
			defer in.Close()
			// The file is read in chunks of 500 events, so memory stays flat whatever its
			// size. A file on disk is read through once first, so that a malformed one
			// imports nothing; standard input cannot be read twice, so events before a
			// malformed line are imported (and not counted twice when it is sent again).
			if file, ok := in.(*os.File); ok {
				if err := stream(file, 500, func([]usage.Item) error { return nil }); err != nil {
					return fmt.Errorf("%s: nothing was imported: %w", args[0], err)
				}
				if _, err := file.Seek(0, io.SeekStart); err != nil {
					return fmt.Errorf("%s: nothing was imported: %w", args[0], err)
				}
			}
			db, pol, err := a.env(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			ing := newIngestor(db, pol, a.now)
			counts := map[string]int{}
			var rejected, quarantined []string
			unlisted := 0
			note := func(list *[]string, line string) {
				// The lines named are bounded too: a file of rejects lists its first ones.
				if len(rejected)+len(quarantined) < maxListedLines {
					*list = append(*list, line)
				} else {
					unlisted++
				}
			}
			next := 1 // the first line not yet imported
			err = stream(in, 500, func(part []usage.Item) error {
				res, err := ing.Ingest(ctx, part)
				if err != nil {
					return err
				}
				for i, r := range res {
					counts[r.Status]++
					switch r.Status {
					case ledger.UsageRejected:
						note(&rejected, fmt.Sprintf("line %d (id %q): rejected: %s", part[i].Line, r.EventID, r.Reason))
					case ledger.UsageQuarantined:
						note(&quarantined, fmt.Sprintf("line %d (id %q): quarantined: %s", part[i].Line, r.EventID, r.Reason))
					}
				}
				next = part[len(part)-1].Line + 1
				return nil
			})
			if err != nil {
				return fmt.Errorf("%s: events before line %d were imported, the rest were not: %w", args[0], next, err)
			}
			if err := db.Audit(ctx, a.actor(), "usage.import", args[0], fmt.Sprintf("%s accepted, %s duplicate, %s quarantined, %s rejected",
				ledger.FormatCredits(int64(counts[ledger.UsageAccepted])), ledger.FormatCredits(int64(counts[ledger.UsageDuplicate])),
				ledger.FormatCredits(int64(counts[ledger.UsageQuarantined])), ledger.FormatCredits(int64(counts[ledger.UsageRejected])))); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s accepted, %s duplicate, %s quarantined, %s rejected.\n", ledger.FormatCredits(int64(counts[ledger.UsageAccepted])),
				ledger.FormatCredits(int64(counts[ledger.UsageDuplicate])), ledger.FormatCredits(int64(counts[ledger.UsageQuarantined])),
				ledger.FormatCredits(int64(counts[ledger.UsageRejected])))
			// Quarantined events are kept and replayed when the directory gains the person;
			// naming their lines lets the operator check the emails in the file.
			for _, r := range append(quarantined, rejected...) {
				fmt.Fprintln(a.stdout, r)
			}
			if unlisted > 0 {
				fmt.Fprintf(a.stdout, "and %s more lines quarantined or rejected, not listed.\n", ledger.FormatCredits(int64(unlisted)))
			}
			if len(rejected) > 0 {
				fmt.Fprintln(a.stderr, "tokenpay: some events were rejected (listed above); fix them and import the file again: accepted events are not counted twice")
				return exitError{1}
			}
			return nil
		},
	}
	imp.Flags().StringVar(&format, "format", "", "csv or jsonl (default: from the file extension)")
	cmd.AddCommand(imp)
	return cmd
}
