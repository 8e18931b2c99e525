package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/nudges"
)

// requireDB refuses a read-only command on a database file that does not exist: opening
// it would create an empty ledger and then report on nothing as if all were well.
func (a *app) requireDB() error {
	if a.onPostgres() {
		return nil // a PostgreSQL database is never created by connecting to it
	}
	if _, err := os.Stat(a.dbPath); errors.Is(err, os.ErrNotExist) {
		return ledger.Errorf(ledger.NotFound, "there is no database at %s; pass --db or set TOKENPAY_DB to the ledger's file (nothing was created)", a.dbPath)
	}
	return nil
}

// existingEnv is env for a read-only command: the policy is read first, then the database
// must already exist.
func (a *app) existingEnv(ctx context.Context) (ledger.Store, *policy.Policy, error) {
	if _, err := a.policy(); err != nil {
		return nil, nil, err
	}
	if err := a.requireDB(); err != nil {
		return nil, nil, err
	}
	return a.env(ctx)
}

// pathProblem is what went wrong with a file, without the path the caller already names
// ("no such file or directory", not "open x.csv: no such file or directory").
func pathProblem(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// count says "1 person", "2 people", "1,000 events": a number and its noun, as people write them.
func count(n int, singular, plural string) string {
	if n == 1 {
		return "1 " + singular
	}
	return ledger.FormatCredits(int64(n)) + " " + plural
}

func (a *app) apikeyListCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys: name, created, last used, revoked (never the key: only its hash is stored)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, pol, err := a.existingEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			keys, err := db.APIKeys(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				type keyJSON struct {
					Name      string     `json:"name"`
					CreatedAt time.Time  `json:"created_at"`
					LastUsed  *time.Time `json:"last_used"`
					Revoked   bool       `json:"revoked"`
				}
				out := []keyJSON{}
				for _, k := range keys {
					j := keyJSON{Name: k.Name, CreatedAt: k.CreatedAt, Revoked: k.Revoked}
					if !k.LastUsed.IsZero() {
						j.LastUsed = &k.LastUsed
					}
					out = append(out, j)
				}
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			if len(keys) == 0 {
				fmt.Fprintln(a.stdout, "No API keys yet. Create one for a gateway with 'tokenpay apikey create NAME'.")
				return nil
			}
			loc := pol.Location()
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCREATED\tLAST USED\tSTATUS")
			for _, k := range keys {
				used, status := "never", "active"
				if !k.LastUsed.IsZero() {
					used = k.LastUsed.In(loc).Format("2006-01-02 15:04 MST")
				}
				if k.Revoked {
					status = "revoked"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, k.CreatedAt.In(loc).Format("2006-01-02 15:04 MST"), used, status)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

type personJSON struct {
	Email        string `json:"email"`
	Name         string `json:"name"`
	Team         string `json:"team"`
	Role         string `json:"role"`
	ManagerEmail string `json:"manager_email"`
	Segment      string `json:"segment"`
	SlackUserID  string `json:"slack_user_id,omitempty"`
	TeamsUserID  string `json:"teams_user_id,omitempty"`
}

func (a *app) peopleListCommand() *cobra.Command {
	var team, manager, segment string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--team T] [--manager EMAIL] [--segment S] [--json]",
		Short: "List the directory, optionally by team, manager or fluency segment",
		Long: "List the people in the directory with their team, role, manager and fluency segment today.\n" +
			"Filters combine; team and manager match ignoring case. Segments: " + strings.Join(segmentNames(), ", ") + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if segment != "" && !slices.Contains(segmentNames(), strings.ToLower(segment)) {
				return usageError(fmt.Sprintf("--segment %q is not a segment; use one of %s", segment, strings.Join(segmentNames(), ", ")))
			}
			db, pol, err := a.existingEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			ctx := cmd.Context()
			if manager != "" {
				if _, err := db.PersonByEmail(ctx, manager); err != nil {
					return err
				}
			}
			snap, err := a.nudgesService(db, pol, nil).Segments(ctx, a.now())
			if err != nil {
				return err
			}
			var out []personJSON
			for _, m := range snap.Members {
				p := m.Person
				seg := string(m.Segment)
				switch {
				case team != "" && !strings.EqualFold(p.Team, team),
					manager != "" && !strings.EqualFold(p.ManagerEmail, manager),
					segment != "" && !strings.EqualFold(segment, seg) && !(strings.EqualFold(segment, nudges.HoardingRisk) && m.Hoarding):
					continue
				}
				if m.Hoarding {
					seg += ", " + nudges.HoardingRisk
				}
				out = append(out, personJSON{Email: p.Email, Name: p.Name, Team: p.Team, Role: p.Role, ManagerEmail: p.ManagerEmail,
					Segment: seg, SlackUserID: p.SlackUserID, TeamsUserID: p.TeamsUserID})
			}
			slices.SortFunc(out, func(x, y personJSON) int {
				if c := strings.Compare(x.Team, y.Team); c != 0 {
					return c
				}
				return strings.Compare(x.Name, y.Name)
			})
			if asJSON {
				if out == nil {
					out = []personJSON{}
				}
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			if len(out) == 0 {
				fmt.Fprintln(a.stdout, "Nobody matches.")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EMAIL\tNAME\tTEAM\tROLE\tMANAGER\tSEGMENT")
			for _, p := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Email, p.Name, p.Team, p.Role, orDash(p.ManagerEmail), p.Segment)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s.\n", count(len(out), "person", "people"))
			return nil
		},
	}
	cmd.Flags().StringVar(&team, "team", "", "only this team")
	cmd.Flags().StringVar(&manager, "manager", "", "only the direct reports of this manager (email)")
	cmd.Flags().StringVar(&segment, "segment", "", "only this segment: "+strings.Join(segmentNames(), ", "))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func segmentNames() []string {
	var names []string
	for _, s := range nudges.Segments() {
		names = append(names, string(s))
	}
	return append(names, nudges.HoardingRisk)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// policyRoles says where the policy names email: as an admin, or in unlock.delegates (as a
// manager with delegates, or as a delegate). Erasing such a person leaves the policy
// pointing at a pseudonym's former address.
func policyRoles(pol *policy.Policy, email string) []string {
	var roles []string
	if pol.IsAdmin(email) {
		roles = append(roles, "admins")
	}
	for manager, delegates := range pol.Unlock.Delegates {
		if strings.EqualFold(manager, email) {
			roles = append(roles, fmt.Sprintf("unlock.delegates (as the manager %s)", manager))
		}
		for _, d := range delegates {
			if strings.EqualFold(d, email) {
				roles = append(roles, fmt.Sprintf("unlock.delegates (as a delegate of %s)", manager))
			}
		}
	}
	slices.Sort(roles)
	return roles
}
