package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/connectors"
	"github.com/tokenpay/tokenpay/ledger/connectors/anthropic"
	"github.com/tokenpay/tokenpay/ledger/connectors/openai"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/nudges"
)

// connectorMetrics count what each connector brings in and how its runs go.
type connectorMetrics struct {
	events  *prometheus.CounterVec
	runs    *prometheus.CounterVec
	success *prometheus.GaugeVec
}

func newConnectorMetrics(reg *prometheus.Registry) *connectorMetrics {
	m := &connectorMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenpay_connector_events_total",
			Help: "Usage events from each connector (litellm, otlp, openai, anthropic) by outcome."}, []string{"connector", "status"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenpay_connector_runs_total",
			Help: "Pull connector runs by outcome (ok, error)."}, []string{"connector", "outcome"}),
		success: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tokenpay_connector_last_success_timestamp_seconds",
			Help: "When each pull connector last ran without error (Unix seconds)."}, []string{"connector"}),
	}
	reg.MustRegister(m.events, m.runs, m.success)
	return m
}

// connectorHub hands connector events to the ingestion path of db under pol.
func (a *app) connectorHub(db ledger.Store, pol *policy.Policy, m *connectorMetrics) *connectors.Hub {
	h := &connectors.Hub{Store: db, Ingester: newIngestor(db, pol, a.now), Log: a.log,
		Maps: func(name string) connectors.Mapper {
			c := pol.Connector(name)
			return connectors.Mapper{Users: c.Users, APIKeys: c.APIKeys}
		}}
	if m != nil {
		h.Observe = func(connector, status string, n int) { m.events.WithLabelValues(connector, status).Add(float64(n)) }
	}
	return h
}

// pullConfig is one pull connector's environment.
type pullConfig struct {
	name, job, keyVar, urlVar string
}

var pullConfigs = []pullConfig{
	{ledger.ConnectorOpenAI, policy.JobPullOpenAI, "OPENAI_ADMIN_KEY", "OPENAI_BASE_URL"},
	{ledger.ConnectorAnthropic, policy.JobPullAnthropic, "ANTHROPIC_ADMIN_KEY", "ANTHROPIC_BASE_URL"},
}

// pullers builds the pull connectors whose admin key is set; the keys stay in the
// environment, never in the database.
func (a *app) pullers(pol *policy.Policy, hub *connectors.Hub, m *connectorMetrics) map[string]*connectors.Puller {
	out := map[string]*connectors.Puller{}
	for _, c := range pullConfigs {
		key := a.getenv(c.keyVar)
		if key == "" {
			continue
		}
		var f connectors.Fetcher
		switch c.name {
		case ledger.ConnectorOpenAI:
			f = openai.NewFetcher(a.getenv(c.urlVar), key)
		case ledger.ConnectorAnthropic:
			f = anthropic.NewFetcher(a.getenv(c.urlVar), key)
		}
		p := &connectors.Puller{Name: c.name, Fetcher: f, Hub: hub, Now: func() time.Time { return a.now() },
			Backfill: pol.Connectors.Backfill, Reread: pol.Connectors.Reread, Log: a.log}
		if m != nil {
			p.Ran = func(name string, err error) {
				if err != nil {
					m.runs.WithLabelValues(name, "error").Inc()
					return
				}
				m.runs.WithLabelValues(name, "ok").Inc()
				m.success.WithLabelValues(name).Set(float64(a.now().Unix()))
			}
		}
		out[c.job] = p
	}
	return out
}

// jobFunc is what the scheduler runs: the nudges service's jobs, the pull connectors, and
// after a quarantine replay, the connector events waiting for an identity mapping.
func (a *app) jobFunc(db ledger.Store, pol *policy.Policy, handler *bot.Handler, m *connectorMetrics) nudges.JobFunc {
	svc := a.nudgesService(db, pol, handler)
	hub := a.connectorHub(db, pol, m)
	pullers := a.pullers(pol, hub, m)
	return func(ctx context.Context, run nudges.Run) (string, error) {
		for _, c := range pullConfigs {
			if run.Job != c.job {
				continue
			}
			p := pullers[c.job]
			if p == nil {
				return fmt.Sprintf("not configured: set %s (and %s for another endpoint) to read %s usage", c.keyVar, c.urlVar, c.name), nil
			}
			return p.Run(ctx)
		}
		out, err := svc.Run(ctx, run)
		if err != nil || run.Job != policy.JobQuarantineReplay {
			return out, err
		}
		var posted, waiting int
		for _, c := range ledger.Connectors() {
			p, w, err := hub.Replay(ctx, c)
			if err != nil {
				return out, err
			}
			posted, waiting = posted+p, waiting+w
		}
		if posted+waiting > 0 {
			out += fmt.Sprintf("; connectors: %d events posted, %d waiting for an identity mapping", posted, waiting)
		}
		return out, nil
	}
}

func (a *app) connectorsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "connectors",
		Short: "Show each usage connector: configured or not, last run, cursor, events and credits, unmapped identities, last error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, pol, err := a.env(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			return a.printConnectors(cmd.Context(), db, pol, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// connectorJSON is one connector in `tokenpay connectors --json`.
type connectorJSON struct {
	Name        string           `json:"name"`
	Configured  bool             `json:"configured"`
	How         string           `json:"how"`
	LastRunAt   *time.Time       `json:"last_run_at"`
	LastOKAt    *time.Time       `json:"last_ok_at"`
	Cursor      *time.Time       `json:"cursor"`
	LastEventAt *time.Time       `json:"last_event_at"`
	Events      int64            `json:"events"`
	Credits     int64            `json:"credits"`
	Quarantined int64            `json:"quarantined"`
	Unmapped    map[string]int64 `json:"unmapped"`
	Hints       []string         `json:"hints"`
	LastError   string           `json:"last_error"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func (a *app) printConnectors(ctx context.Context, db ledger.Store, pol *policy.Policy, asJSON bool) error {
	list, err := a.connectorList(ctx, db, pol)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	return a.writeConnectors(list, pol)
}

// connectorList is each connector's status, for the command and the dashboard.
func (a *app) connectorList(ctx context.Context, db ledger.Store, pol *policy.Policy) ([]connectorJSON, error) {
	var list []connectorJSON
	for _, name := range ledger.Connectors() {
		configured, how := true, ""
		switch name {
		case ledger.ConnectorLiteLLM:
			how = "push: LiteLLM's generic_api callback POSTs to /api/v1/usage/litellm with an API key"
		case ledger.ConnectorOTLP:
			how = "push: OTLP/HTTP exporters POST to /v1/traces with an API key"
		}
		for _, c := range pullConfigs {
			if c.name == name {
				configured = a.getenv(c.keyVar) != ""
				how = fmt.Sprintf("pull: job %s (%s) reads %s", c.job, mustSchedule(pol, c.job), urlOr(a.getenv(c.urlVar), name))
				if !configured {
					how = fmt.Sprintf("not configured: set %s in serve's environment", c.keyVar)
				}
			}
		}
		st, err := connectors.StatusOf(ctx, db, name, configured, how)
		if err != nil {
			return nil, err
		}
		if !configured && !st.State.LastRunAt.IsZero() {
			// The key is in serve's environment, not in this command's: serve runs the job.
			for _, c := range pullConfigs {
				if c.name == name {
					how = fmt.Sprintf("pull: job %s runs in serve (%s is not set for this command)", c.job, c.keyVar)
				}
			}
		}
		list = append(list, connectorJSON{Name: name, Configured: configured, How: how, LastRunAt: timePtr(st.State.LastRunAt),
			LastOKAt: timePtr(st.State.LastOKAt), Cursor: timePtr(st.State.Cursor), LastEventAt: timePtr(st.Stats.LastEventAt),
			Events: st.Stats.Events, Credits: st.Stats.Credits, Quarantined: st.Stats.Quarantined, Unmapped: st.Stats.Unmapped,
			Hints: st.UnmappedHints(), LastError: st.State.LastError})
	}
	return list, nil
}

func (a *app) writeConnectors(list []connectorJSON, pol *policy.Policy) error {
	loc := pol.Location()
	when := func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return t.In(loc).Format("2006-01-02 15:04 MST")
	}
	for _, c := range list {
		fmt.Fprintf(a.stdout, "%s — %s\n", c.Name, c.How)
		if c.Cursor != nil || c.LastRunAt != nil {
			fmt.Fprintf(a.stdout, "  last run %s, last success %s, read up to %s\n", when(c.LastRunAt), when(c.LastOKAt), when(c.Cursor))
		}
		fmt.Fprintf(a.stdout, "  %d events, %s credits booked; last received %s\n", c.Events, ledger.FormatCredits(c.Credits), when(c.LastEventAt))
		if c.Quarantined > 0 {
			fmt.Fprintf(a.stdout, "  %d events wait for their person in the directory (tokenpay people import adds them)\n", c.Quarantined)
		}
		for _, h := range c.Hints {
			fmt.Fprintf(a.stdout, "  unmapped %s\n", h)
		}
		if c.LastError != "" {
			fmt.Fprintf(a.stdout, "  last error: %s\n", c.LastError)
		}
	}
	return nil
}

func mustSchedule(pol *policy.Policy, job string) string {
	s, _ := pol.Schedule(job)
	return s
}

func urlOr(u, name string) string {
	if u != "" {
		return u
	}
	if name == ledger.ConnectorOpenAI {
		return openai.DefaultBaseURL
	}
	return anthropic.DefaultBaseURL
}
