package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestOperationalEndpoints(t *testing.T) {
	e := New(t)
	ping, err := e.Anon().PingWithResponse(ctx)
	if err != nil || ping.StatusCode() != http.StatusOK || ping.JSON200.Message != "pong" {
		t.Fatalf("ping: %v %v", err, ping)
	}
	if ping.HTTPResponse.Header.Get("X-Request-Id") == "" {
		t.Fatal("every answer carries a request id")
	}
	for path, want := range map[string]string{
		"/healthz":      `"ok"`,
		"/readyz":       `"postgres":"ok"`,
		"/openapi.yaml": "operationId: signUp",
		"/docs/":        "swagger-ui",
	} {
		status, _, body := get(t, e.Server.URL+path)
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want 200 containing %q", path, status, want)
		}
	}
	status, _, metrics := get(t, e.Server.URL+"/metrics")
	if status != http.StatusOK || !strings.Contains(metrics, `bca_http_requests_total{method="GET",operation="ping",status="200"}`) ||
		!strings.Contains(metrics, "go_goroutines") {
		t.Fatalf("metrics by operationId and Go runtime: %d", status)
	}

	// Paths and methods nobody serves answer problem documents (checked by the harness too).
	code, hdr, body := e.Raw(t, "GET", "/api/v1/nothing-here", "", nil)
	if code != http.StatusNotFound || !strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json") || Problem(t, body).Code != "resource.not_found" {
		t.Fatalf("unknown API path: %d %s", code, body)
	}
	code, _, body = e.Raw(t, "DELETE", "/api/v1/ping", "", nil)
	if code != http.StatusMethodNotAllowed || Problem(t, body).Code != "request.method_not_allowed" {
		t.Fatalf("wrong method: %d %s", code, body)
	}
	code, _, body = e.Raw(t, "GET", "/not/api", "", nil)
	if code != http.StatusNotFound || Problem(t, body).Status != http.StatusNotFound {
		t.Fatalf("unknown path outside the API: %d %s", code, body)
	}
}

func TestReadinessFollowsRedis(t *testing.T) {
	redis := testenv.RedisServer(t)
	e := New(t, func(c *config.Config) { c.RedisURL = redis.URL() })
	if status, _, _ := get(t, e.Server.URL+"/readyz"); status != http.StatusOK {
		t.Fatalf("ready with Redis up: %d", status)
	}
	if err := redis.Stop(); err != nil {
		t.Fatal(err)
	}
	status, _, body := get(t, e.Server.URL+"/readyz")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"postgres":"ok"`) {
		t.Fatalf("not ready without Redis: %d %s", status, body)
	}
	if status, _, _ := get(t, e.Server.URL+"/healthz"); status != http.StatusOK {
		t.Fatal("the process is still up")
	}
}
