package api

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/connectors"
	"github.com/tokenpay/tokenpay/ledger/connectors/litellm"
	"github.com/tokenpay/tokenpay/ledger/connectors/otlp"
)

// registerConnectors adds the push connectors' routes: LiteLLM's generic_api callback and
// OTLP/HTTP traces, behind the same bearer API keys as the usage API.
func (s *Server) registerConnectors(mux *http.ServeMux) {
	if s.Connectors == nil {
		return
	}
	mux.Handle("POST /api/v1/usage/litellm", s.authenticated(http.HandlerFunc(s.postLiteLLM)))
	mux.Handle("POST /v1/traces", s.authenticated(http.HandlerFunc(s.postOTLP)))
}

// ConnectorResponse answers a push connector's POST: one result per event, and counts.
type ConnectorResponse struct {
	UsageResponse
	Ignored int `json:"ignored"`
}

func (s *Server) postLiteLLM(w http.ResponseWriter, r *http.Request) {
	body, ok := s.connectorBody(w, r, litellm.MaxBodyBytes)
	if !ok {
		return
	}
	raw, err := readBody(body, r.ContentLength, litellm.MaxBodyBytes)
	if s.connectorBodyError(w, err, litellm.MaxBodyBytes) {
		return
	}
	var events []connectors.Usage
	if err == nil {
		events, err = litellm.DecodeBytes(raw)
	}
	if errors.Is(err, litellm.ErrTooManyEvents) {
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.pushUsage(w, r, ledger.ConnectorLiteLLM, events)
}

func (s *Server) postOTLP(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	body, ok := s.connectorBody(w, r, otlp.MaxBodyBytes)
	if !ok {
		return
	}
	raw, err := readBody(body, r.ContentLength, otlp.MaxBodyBytes)
	if s.connectorBodyError(w, err, otlp.MaxBodyBytes) {
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "the body could not be read: "+err.Error())
		return
	}
	events, err := otlp.Decode(raw, ct)
	if errors.Is(err, otlp.ErrContentType) {
		writeError(w, http.StatusUnsupportedMediaType, err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	results, err := s.Connectors.Push(r.Context(), ledger.ConnectorOTLP, events)
	if err != nil {
		// OTLP exporters retry a 503 after Retry-After; the batch was rolled back whole.
		s.Log.Error().Err(err).Int("spans", len(events)).Msg("ingest OTLP usage")
		writeRetry(w)
		return
	}
	var rejected int64
	var reasons []string
	for _, res := range results {
		s.observeOne(res.Status)
		if res.Status == ledger.UsageRejected {
			rejected++
			if len(reasons) < 3 {
				reasons = append(reasons, res.EventID+": "+res.Reason)
			}
		}
	}
	msg := strings.Join(reasons, "; ")
	out, outCT := otlp.Response(ct, rejected, msg)
	w.Header().Set("Content-Type", outCT)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func (s *Server) observeOne(status string) {
	if s.Observe != nil && status != connectors.Ignored {
		s.Observe(status, 1)
	}
}

func (s *Server) pushUsage(w http.ResponseWriter, r *http.Request, connector string, events []connectors.Usage) {
	results, err := s.Connectors.Push(r.Context(), connector, events)
	if err != nil {
		s.Log.Error().Err(err).Str("connector", connector).Int("events", len(events)).Msg("ingest connector usage")
		writeRetry(w)
		return
	}
	resp := ConnectorResponse{UsageResponse: UsageResponse{Results: results}}
	resp.count(results)
	for _, res := range results {
		if res.Status == connectors.Ignored {
			resp.Ignored++
			resp.Rejected--
		}
	}
	s.observe(resp.UsageResponse)
	writeJSON(w, http.StatusOK, resp)
}

// connectorBody bounds the body and undoes Content-Encoding: gzip (OTLP exporters
// compress by default; the bound applies to what is decompressed too).
func (s *Server) connectorBody(w http.ResponseWriter, r *http.Request, limit int64) (io.Reader, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return r.Body, true
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			if s.connectorBodyError(w, err, limit) {
				return nil, false
			}
			writeError(w, http.StatusBadRequest, "the body says Content-Encoding: gzip but is not gzip data")
			return nil, false
		}
		return &limitedReader{r: io.LimitReader(zr, limit+1), limit: limit}, true
	default:
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported; send gzip or no encoding", enc))
		return nil, false
	}
}

// readBody reads a whole body into one buffer sized from Content-Length (a LiteLLM batch is
// megabytes: growing a buffer by doubling copies it several times over).
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if contentLength > 0 && contentLength <= limit {
		buf.Grow(int(contentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// errDecompressedTooLarge is a gzip body that inflates beyond the limit.
var errDecompressedTooLarge = errors.New("decompressed body too large")

type limitedReader struct {
	r     io.Reader
	n     int64
	limit int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.limit {
		return n, errDecompressedTooLarge
	}
	return n, err
}

// connectorBodyError answers a body over the limit with 413 and reports true.
func (s *Server) connectorBodyError(w http.ResponseWriter, err error, limit int64) bool {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || errors.Is(err, errDecompressedTooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d MiB; send smaller batches", limit>>20))
		return true
	}
	return false
}
