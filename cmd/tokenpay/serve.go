package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/api"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

func (a *app) serveCommand() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API, Slack and Teams endpoints, and the scheduler",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addr == "" {
				addr = a.getenv("TOKENPAY_ADDR")
			}
			if addr == "" {
				addr = ":8080"
			}
			db, pol, err := a.env(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			// Refuse to serve a damaged file rather than acknowledge usage into it.
			if files, ok := db.(fileChecks); ok {
				if err := files.QuickCheck(cmd.Context()); err != nil {
					return err
				}
			}
			// Idempotent: the first start loads the starter prompt library.
			if err := a.promptLibrary(db, pol).Seed(cmd.Context()); err != nil {
				return err
			}
			s := &server{app: a, db: db, pol: pol}
			return s.run(cmd.Context(), addr)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen address (default $TOKENPAY_ADDR or :8080)")
	return cmd
}

// server is one running `tokenpay serve`.
type server struct {
	app *app
	db  ledger.Store
	pol *policy.Policy

	connMetrics *connectorMetrics

	// ready is closed once the listener is up; Addr is then valid (tests listen on port 0),
	// and MetricsAddr too when TOKENPAY_METRICS_ADDR puts /metrics on a listener of its own.
	ready       chan struct{}
	Addr        string
	MetricsAddr string
}

// metrics are created per server so that tests can run several in one process.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	usage    *prometheus.CounterVec
	// quarantineBounded counts usage events a quarantine bound refused or gave up.
	quarantineBounded *prometheus.CounterVec
}

func newMetrics(db ledger.Store) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenpay_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tokenpay_http_request_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"route"}),
		usage: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenpay_usage_events_total", Help: "Usage events by outcome."}, []string{"status"}),
		quarantineBounded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tokenpay_quarantine_bounded_events_total",
			Help: "Usage events for people not in the directory that a quarantine bound refused (bound=count: the API key has too many waiting) or gave up (bound=age)."}, []string{"bound"}),
	}
	// sign turns an account's balance into the figure people expect: the pool goes negative
	// as it issues credits, so issued credits are its balance negated.
	ledgerTotal := func(name, help, account string, sign float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			b, err := db.AccountBalance(context.Background(), account)
			if err != nil {
				return 0
			}
			return sign * float64(b)
		})
	}
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tokenpay_quarantine_waiting_events", Help: "Usage events waiting in quarantine for their person."},
		func() float64 {
			n, err := db.QuarantineWaiting(context.Background())
			if err != nil {
				return 0
			}
			return float64(n)
		})
	// The WAL is kept under sqlite.DefaultWALLimit by TRUNCATE checkpoints in the writer's
	// gaps; its size is the figure to alert on (issue 18: it grew without bound). A
	// PostgreSQL server reports its own WAL to its own monitoring.
	if files, ok := db.(walFigures); ok {
		m.registry.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tokenpay_sqlite_wal_bytes", Help: "Size of the ledger's write-ahead log file, bytes."},
				func() float64 { return float64(files.WALSize()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tokenpay_sqlite_wal_resets_total",
				Help: "Checkpoints that copied the whole write-ahead log into the database and truncated it, since start."},
				func() float64 { return float64(files.WALResets()) }))
	}
	m.registry.MustRegister(m.requests, m.latency, m.usage, m.quarantineBounded, waiting,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		ledgerTotal("tokenpay_ledger_issued_credits", "Credits issued from the pool, net of returns.", ledger.AccountPool, -1),
		ledgerTotal("tokenpay_ledger_reclaimable_credits", "Expired credits available to reallocate.", ledger.AccountExpired, 1))
	return m
}

// instrument counts and times requests by their mux pattern (never the raw path, which
// would explode label cardinality with emails).
func (m *metrics) instrument(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		_, route := mux.Handler(r)
		if route == "" {
			route = "unmatched"
		}
		mux.ServeHTTP(rec, r)
		m.requests.WithLabelValues(route, fmt.Sprint(rec.code)).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *server) routes(m *metrics) *http.ServeMux {
	mux := http.NewServeMux()
	ing := newIngestor(s.db, s.pol, s.app.now)
	ing.Log, ing.OnBound = s.app.log, s.app.quarantineBound
	apiServer := &api.Server{Store: s.db, Ingestor: ing, Now: s.app.now, Log: s.app.log,
		Period: func(t time.Time) (time.Time, time.Time) { return s.pol.PeriodStart(t), s.pol.PeriodEnd(t) },
		Observe: func(status string, n int) {
			if n > 0 {
				m.usage.WithLabelValues(status).Add(float64(n))
			}
		}}
	s.connMetrics = newConnectorMetrics(m.registry)
	apiServer.Connectors = s.app.connectorHub(s.db, s.pol, s.connMetrics)
	apiServer.Register(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if files, ok := s.db.(fileChecks); ok {
			if err := files.FilesIntact(); err != nil {
				s.app.log.Error().Err(err).Msg("not ready: database files changed under the process")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "not ready:", err)
				return
			}
		}
		if err := s.db.Ready(r.Context()); err != nil {
			s.app.log.Warn().Err(err).Msg("not ready")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: database unreachable or not migrated")
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if s.app.getenv("TOKENPAY_METRICS_ADDR") == "" {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	}
	return mux
}

// shutdownGrace bounds how long in-flight requests may take after SIGTERM.
const shutdownGrace = 20 * time.Second

func (s *server) run(ctx context.Context, addr string) error {
	m := newMetrics(s.db)
	s.app.quarantineBound = func(bound string, n int) { m.quarantineBounded.WithLabelValues(bound).Add(float64(n)) }
	mux := s.routes(m)
	// TOKENPAY_METRICS_ADDR moves /metrics to a listener of its own (say, loopback or an
	// internal interface), so the public listener does not expose it.
	var metricsSrv *http.Server
	if maddr := s.app.getenv("TOKENPAY_METRICS_ADDR"); maddr != "" {
		mln, err := net.Listen("tcp", maddr)
		if err != nil {
			return fmt.Errorf("listen for metrics on %s: %w (set TOKENPAY_METRICS_ADDR to a free address)", maddr, err)
		}
		mmux := http.NewServeMux()
		mmux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
		metricsSrv = &http.Server{Handler: mmux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
		s.MetricsAddr = mln.Addr().String()
		s.app.log.Info().Str("addr", s.MetricsAddr).Msg("serving metrics")
		go func() {
			if err := metricsSrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.app.log.Error().Err(err).Msg("metrics listener stopped")
			}
		}()
		defer metricsSrv.Close()
	}
	srv := &http.Server{Handler: m.instrument(mux), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (set TOKENPAY_ADDR to a free address)", addr, err)
	}
	s.Addr = ln.Addr().String()
	s.app.log.Info().Str("addr", s.Addr).Str("db", s.app.dbName()).Msg("serving")
	platformCtx, stopPlatforms := context.WithCancel(ctx)
	defer stopPlatforms()
	platforms := s.startPlatforms(platformCtx, mux)
	if err := s.startDashboard(mux, platforms.handler); err != nil {
		return err
	}
	scheduled := s.startNudges(platformCtx, platforms)
	if s.ready != nil {
		close(s.ready)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.app.log.Info().Msg("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	stopPlatforms()
	platforms.Wait()
	scheduled.Wait()
	s.app.log.Info().Msg("stopped")
	return nil
}
