// Package api serves the machine interface: usage ingestion and balance lookups, both
// behind bearer API keys.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/connectors"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

// Server holds what the handlers need.
type Server struct {
	Store    ledger.Store
	Ingestor *usage.Ingestor
	// Period returns the bounds of the period containing t (the policy's, in the org zone).
	Period func(t time.Time) (start, end time.Time)
	Now    func() time.Time
	Log    zerolog.Logger
	// Observe, when set, counts ingestion outcomes (for metrics).
	Observe func(status string, n int)
	// Connectors, when set, serves the push connectors (LiteLLM, OTLP; see connectors.go).
	Connectors *connectors.Hub
}

// Register adds the API routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle("POST /api/v1/usage", s.authenticated(http.HandlerFunc(s.postUsage)))
	mux.Handle("GET /api/v1/people/{email}/balance", s.authenticated(http.HandlerFunc(s.getBalance)))
	s.registerConnectors(mux)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		scheme, key, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tokenpay"`)
			writeError(w, http.StatusUnauthorized, "send an API key as 'Authorization: Bearer <key>' (create one with 'tokenpay apikey create NAME')")
			return
		}
		k, err := s.Store.CheckAPIKey(r.Context(), strings.TrimSpace(key))
		if err != nil {
			if ledger.ErrorCode(err) != ledger.Forbidden {
				s.Log.Error().Err(err).Msg("check api key")
				writeError(w, http.StatusServiceUnavailable, "the ledger is not available; try again shortly")
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="tokenpay", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "the API key is not valid or was revoked")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), apiKeyContext{}, k)))
	})
}

// apiKeyContext keys the request's checked API key in its context.
type apiKeyContext struct{}

// UsageResponse is the answer to a usage batch.
type UsageResponse struct {
	Results     []ledger.UsageResult `json:"results"`
	Accepted    int                  `json:"accepted"`
	Duplicates  int                  `json:"duplicates"`
	Quarantined int                  `json:"quarantined"`
	Rejected    int                  `json:"rejected"`
}

func (s *Server) postUsage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, usage.MaxBodyBytes)
	items, err := usage.DecodeBatch(r.Body)
	if err == nil {
		// The decoder stops at the end of the JSON value; whitespace after it still counts
		// towards the limit, so a body over it is refused whatever it ends with.
		_, err = io.Copy(io.Discard, r.Body)
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "the body is over 4 MiB; send smaller batches")
		return
	case errors.Is(err, usage.ErrTooManyEvents):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	key, _ := r.Context().Value(apiKeyContext{}).(ledger.APIKey)
	results, err := s.Ingestor.IngestFrom(r.Context(), key.ID, items)
	if err != nil {
		// A write failure (disk full, read-only file, a stuck lock) is the server's, not the
		// batch's: the gateway should send it again. On SQLite the whole batch was rolled
		// back; on PostgreSQL another partition's events may be stored, and come back as
		// duplicates.
		s.Log.Error().Err(err).Int("events", len(items)).Msg("ingest usage")
		writeRetry(w)
		return
	}
	resp := UsageResponse{Results: results}
	resp.count(results)
	s.observe(resp)
	writeJSON(w, http.StatusOK, resp)
}

// writeRetry answers a batch the ledger could not write (disk full, read-only file, a
// stuck lock): 503 with Retry-After (seconds) tells the sender to send it again, which
// never counts an event twice.
func writeRetry(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "30")
	writeError(w, http.StatusServiceUnavailable, "the ledger could not record this batch; retry it (an event already recorded is counted once)")
}

// count adds each result to its status's count; any status not counted otherwise is a
// rejection.
func (resp *UsageResponse) count(results []ledger.UsageResult) {
	for _, res := range results {
		switch res.Status {
		case ledger.UsageAccepted:
			resp.Accepted++
		case ledger.UsageDuplicate:
			resp.Duplicates++
		case ledger.UsageQuarantined:
			resp.Quarantined++
		default:
			resp.Rejected++
		}
	}
}

// observe reports a batch's counts to Observe, when set.
func (s *Server) observe(resp UsageResponse) {
	if s.Observe == nil {
		return
	}
	s.Observe(ledger.UsageAccepted, resp.Accepted)
	s.Observe(ledger.UsageDuplicate, resp.Duplicates)
	s.Observe(ledger.UsageQuarantined, resp.Quarantined)
	s.Observe(ledger.UsageRejected, resp.Rejected)
}

// BalanceJSON is the balance as the HTTP API and `tokenpay balance --json` print it.
type BalanceJSON struct {
	Email       string    `json:"email"`
	Available   int64     `json:"available"`
	Spent       int64     `json:"spent"`
	Overage     int64     `json:"overage"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
}

// NewBalanceJSON converts a ledger balance.
func NewBalanceJSON(b ledger.Balance) BalanceJSON {
	return BalanceJSON{Email: b.Email, Available: b.Available, Spent: b.Spent, Overage: b.Overage,
		PeriodStart: b.PeriodStart.UTC(), PeriodEnd: b.PeriodEnd.UTC()}
}

func (s *Server) getBalance(w http.ResponseWriter, r *http.Request) {
	email := r.PathValue("email")
	p, err := s.Store.PersonByEmail(r.Context(), email)
	if err != nil {
		if ledger.ErrorCode(err) == ledger.NotFound {
			writeError(w, http.StatusNotFound, "no person with that email in the directory")
			return
		}
		s.Log.Error().Err(err).Msg("balance lookup")
		writeError(w, http.StatusServiceUnavailable, "the ledger is not available; try again shortly")
		return
	}
	start, end := s.Period(s.Now())
	b, err := s.Store.Balance(r.Context(), p.ID, start, end)
	if err != nil {
		s.Log.Error().Err(err).Msg("balance lookup")
		writeError(w, http.StatusServiceUnavailable, "the ledger is not available; try again shortly")
		return
	}
	writeJSON(w, http.StatusOK, NewBalanceJSON(b))
}
