package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/bot/web"
	"github.com/tokenpay/tokenpay/ledger"
)

// publicURL is TOKENPAY_PUBLIC_URL without a trailing slash ("" when unset).
func (a *app) publicURL() string { return strings.TrimRight(a.getenv("TOKENPAY_PUBLIC_URL"), "/") }

// startDashboard serves the web dashboard on mux; decisions taken there go through
// handler, the same core as the chat platforms.
func (s *server) startDashboard(mux *http.ServeMux, handler *bot.Handler) error {
	get := s.app.getenv
	public := s.app.publicURL()
	ws := &web.Server{Store: s.db, Policy: s.pol, Handler: handler, Now: s.app.now, Log: s.app.log, PublicURL: public,
		Connectors: func(ctx context.Context) ([]web.ConnectorHealth, error) {
			list, err := s.app.connectorList(ctx, s.db, s.pol)
			if err != nil {
				return nil, err
			}
			out := make([]web.ConnectorHealth, len(list))
			for i, c := range list {
				h := web.ConnectorHealth{Name: c.Name, Configured: c.Configured, How: c.How, Events: c.Events, Credits: c.Credits,
					Quarantined: c.Quarantined, LastError: c.LastError}
				for _, n := range c.Unmapped {
					h.Unmapped += n
				}
				for _, p := range []struct {
					from *time.Time
					to   *time.Time
				}{{c.LastRunAt, &h.LastRunAt}, {c.LastOKAt, &h.LastOKAt}, {c.LastEventAt, &h.LastEventAt}} {
					if p.from != nil {
						*p.to = *p.from
					}
				}
				out[i] = h
			}
			return out, nil
		}}
	issuer, id, secret := get("OIDC_ISSUER_URL"), get("OIDC_CLIENT_ID"), get("OIDC_CLIENT_SECRET")
	switch {
	case issuer != "" && id != "" && secret != "" && public != "":
		ws.OIDC = &web.OIDC{Issuer: issuer, ClientID: id, ClientSecret: secret, RedirectURL: public + "/auth/callback"}
		s.app.log.Info().Str("issuer", issuer).Msg("dashboard at /dashboard, signing in with OpenID Connect or a link from tokenpay login-link")
	case issuer != "" || id != "" || secret != "":
		s.app.log.Warn().Msg("OpenID Connect disabled: set all of OIDC_ISSUER_URL, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET and TOKENPAY_PUBLIC_URL; the dashboard takes sign-in links from tokenpay login-link meanwhile")
	default:
		s.app.log.Info().Msg("dashboard at /dashboard, signing in with links from tokenpay login-link (set OIDC_ISSUER_URL, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET and TOKENPAY_PUBLIC_URL for single sign-on)")
	}
	if err := ws.Register(mux); err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	return nil
}

// linkBase is where a sign-in link points: --url, else TOKENPAY_PUBLIC_URL, else the
// local listener.
func (a *app) linkBase(flag string) string {
	if flag != "" {
		return strings.TrimRight(flag, "/")
	}
	if u := a.publicURL(); u != "" {
		return u
	}
	addr := a.getenv("TOKENPAY_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	if strings.HasPrefix(addr, ":") {
		addr = "localhost" + addr
	}
	return "http://" + addr
}

func (a *app) loginLinkCommand() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "login-link EMAIL [--url BASE]",
		Short: "Print a one-time sign-in link to the dashboard, valid for 10 minutes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.requireDB(); err != nil {
				return err
			}
			return a.withDB(cmd, func(db ledger.Store) error {
				token, expires, err := db.CreateLoginLink(cmd.Context(), args[0], a.actor())
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "Sign-in link for %s: open it and press Sign in; it works once, until %s.\n%s\n", args[0],
					expires.UTC().Format("15:04 UTC"), web.LinkURL(a.linkBase(base), token))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&base, "url", "", "public base URL of tokenpay serve (default $TOKENPAY_PUBLIC_URL, else http://localhost:8080)")
	return cmd
}
