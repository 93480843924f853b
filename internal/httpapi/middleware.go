package httpapi

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// statusRecorder remembers the status and size of a response for the access log. It keeps
// http.Flusher working (server-sent events need it) through Unwrap and ResponseController.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// ReadFrom passes a body reader to the connection's own ReadFrom, so a file body goes out with
// sendfile(2) (the sync download) instead of through a user-space buffer.
func (s *statusRecorder) ReadFrom(r io.Reader) (int64, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := s.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{s.ResponseWriter}, r)
	}
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Flush() {
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// children caches each label combination's counter and histogram: the vectors' own lookup
	// hashes the label values on every request.
	children sync.Map // seriesKey → series
}

type seriesKey struct {
	operation, method string
	status            int
}

type series struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// observe counts one request and its latency. A method outside the standard ones counts as
// "other": a client choosing method names must not make series (and cache entries) without end.
func (m *metrics) observe(operation, method string, status int, elapsed time.Duration) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		method = "other"
	}
	k := seriesKey{operation, method, status}
	v, ok := m.children.Load(k)
	if !ok {
		v, _ = m.children.LoadOrStore(k, series{
			requests: m.requests.WithLabelValues(operation, method, strconv.Itoa(status)),
			latency:  m.latency.WithLabelValues(operation),
		})
	}
	s := v.(series)
	s.requests.Inc()
	s.latency.Observe(elapsed.Seconds())
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bca_http_requests_total", Help: "HTTP requests by operationId, method and status.",
		}, []string{"operation", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bca_http_request_duration_seconds", Help: "HTTP request latency by operationId.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// observe is the outermost middleware: request id, access log, metrics and panic recovery.
func observe(log *slog.Logger, m *metrics, next http.Handler) http.Handler {
	access := newAccessLog(log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 || strings.ContainsFunc(id, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
			id = newRequestID()
		}
		info := &requestInfo{ID: id, ClientAddr: clientAddress(r), UserAgent: r.UserAgent(), Request: r}
		r = r.WithContext(withInfo(r.Context(), info))
		rec := &statusRecorder{ResponseWriter: w}
		rec.Header().Set("X-Request-Id", id)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic", "request_id", id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeError(rec, r, log, fmt.Errorf("panic: %v", v))
				}
			}
			op := info.OperationID
			if op == "" {
				op = "other"
			}
			elapsed := time.Since(start)
			m.observe(op, r.Method, rec.status, elapsed)
			line := accessLine{id: id, method: r.Method, path: r.URL.Path, operation: op, status: rec.status,
				bytes: rec.bytes, elapsed: elapsed, client: info.ClientAddr}
			if info.Principal != nil {
				line.userID = info.Principal.UserID
			}
			if info.Err != nil && rec.status < 500 {
				line.err = info.Err.Error()
			}
			access.write(r.Context(), &line)
		}()
		next.ServeHTTP(rec, r)
	})
}

// requestIDs are a random per-process prefix and a counter: unique, and far cheaper than
// reading the system's random source on every request.
var (
	requestIDPrefix = strings.ToLower(rand.Text()[:10]) + "-"
	requestSeq      atomic.Uint64
)

func newRequestID() string {
	var b [40]byte
	return string(strconv.AppendUint(append(b[:0], requestIDPrefix...), requestSeq.Add(1), 36))
}

// secureHeaders sets the headers every response should carry.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The values are shared, read-only slices (canonical keys): Set would allocate three
		// per request. A later Set replaces a slice and Add appends to a full one, so neither
		// writes into them.
		h["X-Content-Type-Options"] = noSniff
		h["Referrer-Policy"] = noReferrer
		h["X-Frame-Options"] = frameDeny
		next.ServeHTTP(w, r)
	})
}

var (
	noSniff    = []string{"nosniff"}
	noReferrer = []string{"no-referrer"}
	frameDeny  = []string{"DENY"}

	jsonContentType = []string{"application/json"}
)

// cors allows the configured browser origins; credentials are allowed so the refresh cookie
// can be used from those origins.
func cors(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && (slices.Contains(origins, origin) || slices.Contains(origins, "*")) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Expose-Headers", "ETag, Retry-After, X-Request-Id, Sync-Pending, Location")
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match, If-None-Match, X-Profile-Id, X-Client-Token, X-Requested-With, Last-Event-ID")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// notFound answers every path nothing else claims with a problem document.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, http.StatusNotFound, problemOf(r, http.StatusNotFound, "resource.not_found", "No such path."))
}

func problemOf(r *http.Request, status int, code, detail string) apiProblem {
	p := apiProblem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: code, Detail: &detail}
	if info := infoFrom(r.Context()); info != nil {
		p.RequestId = &info.ID
	}
	return p
}
