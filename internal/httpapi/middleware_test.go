package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bca-app/backend/gen/api"
)

func TestPanicsBecomeProblems(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	h := observe(log, newMetrics(prometheus.NewRegistry()), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/ping", nil))
	if rec.Code != http.StatusInternalServerError || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
		t.Fatalf("panic answer: %d %s", rec.Code, rec.Header())
	}
	var p api.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code != "server.internal" || strings.Contains(rec.Body.String(), "boom") {
		t.Fatalf("a problem without internals: %s", rec.Body)
	}
	if !strings.Contains(logs.String(), `"panic":"boom"`) || !strings.Contains(logs.String(), "goroutine") {
		t.Fatalf("the panic is logged with its stack: %s", logs.String())
	}
}

func TestRequestIDIsKeptOrMade(t *testing.T) {
	h := observe(slog.New(slog.DiscardHandler), newMetrics(prometheus.NewRegistry()), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	for in, keep := range map[string]bool{"abc-123": true, "": false, "bad id with spaces": false, strings.Repeat("x", 200): false} {
		req := httptest.NewRequest("GET", "/", nil)
		if in != "" {
			req.Header.Set("X-Request-Id", in)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get("X-Request-Id")
		if got == "" || (got == in) != keep {
			t.Errorf("X-Request-Id %q → %q", in, got)
		}
	}
}

// Every request lands in the series of its operation, method and status, however many label
// combinations have been seen before.
func TestMetricsCountEachSeries(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	statuses := []int{200, 404, 200, 503, 200}
	h := observe(slog.New(slog.DiscardHandler), m, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoFrom(r.Context()).OperationID = r.URL.Query().Get("op")
		code, _ := strconv.Atoi(r.URL.Query().Get("status"))
		w.WriteHeader(code)
	}))
	for _, op := range []string{"getProfile", "ping"} {
		for _, code := range statuses {
			for _, method := range []string{"GET", "HEAD"} {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, "/?op="+op+"&status="+strconv.Itoa(code), nil))
			}
		}
	}
	for _, op := range []string{"getProfile", "ping"} {
		for code, want := range map[int]float64{200: 3, 404: 1, 503: 1} {
			for _, method := range []string{"GET", "HEAD"} {
				if got := testutil.ToFloat64(m.requests.WithLabelValues(op, method, strconv.Itoa(code))); got != want {
					t.Errorf("%s %s %d: %v requests counted, want %v", op, method, code, got, want)
				}
			}
		}
		if n := testutil.CollectAndCount(m.latency); n != 2 {
			t.Errorf("%d latency series, want one per operation (2)", n)
		}
	}
	// Made-up methods share one series.
	before := testutil.CollectAndCount(m.requests)
	for i := range 50 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(fmt.Sprintf("X%d", i), "/?op=ping&status=405", nil))
	}
	if got := testutil.CollectAndCount(m.requests) - before; got != 1 {
		t.Errorf("50 made-up methods added %d series, want 1", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("ping", "other", "405")); got != 50 {
		t.Errorf("%v requests counted under method \"other\", want 50", got)
	}
}
