// Package e2e runs the real service on a loopback port and drives it through the client
// generated from openapi.yaml. Every response is validated against the spec.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/app"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

// kin-openapi decodes only a few media types when it validates a response body. The API also
// answers with pages, vCards, event streams, images and SQLite files: plain text or bytes to
// the schema ({type: string}). Registration is process-wide in kin-openapi, so it happens once.
func init() {
	for _, mt := range []string{"text/html", "text/vcard", "text/event-stream"} {
		openapi3filter.RegisterBodyDecoder(mt, openapi3filter.PlainBodyDecoder)
	}
	for _, mt := range []string{"application/vnd.sqlite3", "image/png", "image/jpeg", "image/gif", "image/webp"} {
		openapi3filter.RegisterBodyDecoder(mt, openapi3filter.FileBodyDecoder)
	}
}

// Server is one running API process.
type Server struct {
	URL    string
	App    *app.App
	Config config.Config
	Logs   *LogSink
	stop   func()
}

// Stop ends the server early (it is stopped at test cleanup anyway).
func (s *Server) Stop() { s.stop() }

// Env is a test's private service: its own database and Redis key space.
type Env struct {
	t        testing.TB
	Config   config.Config
	Server   *Server
	spec     *openapi3.T
	router   routers.Router
	validate bool
}

// Option adjusts the configuration before the server starts.
type Option func(*config.Config)

// BaseConfig is the configuration of a test server: a fresh database, the shared Redis under a
// private prefix, cheap password hashing (the race detector makes argon2 slow; the production
// cost is measured by benchmarks), and generous rate limits unless a test lowers them.
func BaseConfig(t testing.TB) config.Config {
	t.Helper()
	redisURL, prefix := testenv.Redis(t)
	c := config.Defaults()
	c.DatabaseURL = testenv.Database(t)
	c.RedisURL = redisURL
	c.RedisKeyPrefix = prefix
	c.SecretKey = []byte("test-secret-key-that-is-long-enough-0123456789")
	c.StorageDir = t.TempDir()
	c.Password = config.PasswordHashing{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	c.RateLimit = config.RateLimits{PerAddress: 10000, PerAccount: 10000}
	c.RunMigrations = false // the template database already has them
	c.EmbeddedWorker = false
	c.LogLevel = "debug"
	return c
}

// New starts a server with the base configuration adjusted by opts.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	cfg := BaseConfig(t)
	for _, o := range opts {
		o(&cfg)
	}
	spec, err := api.GetSpec()
	if err != nil {
		t.Fatalf("spec: %v", err)
	}
	spec.Servers = openapi3.Servers{{URL: "/api/v1"}}
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		t.Fatalf("router: %v", err)
	}
	e := &Env{t: t, Config: cfg, spec: spec, router: router, validate: true}
	e.Server = e.StartServer(cfg)
	return e
}

// StartServer starts another API process on the same configuration (database, Redis), e.g. to
// show that a revocation reaches every replica.
func (e *Env) StartServer(cfg config.Config) *Server {
	t := e.t
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	sink := &LogSink{}
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(sink, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start app: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, a, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server: %v", err)
			}
			a.Close()
		})
	}
	t.Cleanup(stop)
	return &Server{URL: "http://" + ln.Addr().String(), App: a, Config: cfg, Logs: sink, stop: stop}
}

// HTTPClient returns a client whose every response is checked against openapi.yaml.
func (e *Env) HTTPClient() *http.Client {
	return &http.Client{Transport: &validatingTransport{env: e, next: http.DefaultTransport}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Client is a generated API client for server s, sending token as bearer when non-empty and the
// extra headers given.
func (e *Env) Client(s *Server, token string, headers ...string) *apiclient.ClientWithResponses {
	e.t.Helper()
	c, err := apiclient.NewClientWithResponses(s.URL+"/api/v1", apiclient.WithHTTPClient(e.HTTPClient()),
		apiclient.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			if token != "" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
			for i := 0; i+1 < len(headers); i += 2 {
				r.Header.Set(headers[i], headers[i+1])
			}
			return nil
		}))
	if err != nil {
		e.t.Fatalf("client: %v", err)
	}
	return c
}

// Anon is an anonymous client of the main server.
func (e *Env) Anon() *apiclient.ClientWithResponses { return e.Client(e.Server, "") }

// As is a client of the main server with the bearer token.
func (e *Env) As(token string, headers ...string) *apiclient.ClientWithResponses {
	return e.Client(e.Server, token, headers...)
}

type validatingTransport struct {
	env  *Env
	next http.RoundTripper
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(req.URL.Path, "/api/v1/") {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err := v.env.validateResponse(req, reqBody, resp, body); err != nil {
			v.env.t.Errorf("response of %s %s does not match openapi.yaml: %v\nstatus %d body %s", req.Method, req.URL.Path, err, resp.StatusCode, truncate(body))
		}
	}
	return resp, nil
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// validateResponse checks status, content type, headers and body against the operation. A
// status the spec does not list (and no default) fails too.
func (e *Env) validateResponse(req *http.Request, reqBody []byte, resp *http.Response, body []byte) error {
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	r.URL.Host, r.Host = "", ""
	r.URL.Scheme = ""
	route, params, err := e.router.FindRoute(r)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return checkProblem(resp, body)
		}
		return fmt.Errorf("route: %w", err)
	}
	head := req.Method == http.MethodHead // a HEAD answer has the headers of a GET and no body
	if resp.StatusCode >= 400 && !head {
		if err := checkProblem(resp, body); err != nil {
			return err
		}
	}
	if resp.StatusCode >= 400 && head && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		return fmt.Errorf("error answer to HEAD with Content-Type %q, want application/problem+json", resp.Header.Get("Content-Type"))
	}
	if err := checkListed(route.Operation, resp); err != nil {
		return err
	}
	if err := checkPage(body); err != nil {
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: func(context.Context, *openapi3filter.AuthenticationInput) error { return nil }}},
		Status: resp.StatusCode,
		Header: resp.Header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
			ExcludeResponseBody:   head,
		},
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// checkPage holds every list answer to the shared paging part (openapi.yaml Page and
// CursorPage): a page with a next_cursor says has_more, and a cursor page that says has_more
// gives the cursor to read on. Bodies that are not pages pass.
func checkPage(body []byte) error {
	var page struct {
		Items      *json.RawMessage `json:"items"`
		HasMore    *bool            `json:"has_more"`
		NextCursor *string          `json:"next_cursor"`
	}
	if json.Unmarshal(body, &page) != nil || page.Items == nil || page.HasMore == nil {
		return nil
	}
	if page.NextCursor != nil && !*page.HasMore {
		return fmt.Errorf("page has next_cursor but has_more is false")
	}
	return nil
}

// checkListed is the strict part of the contract: the status must be listed explicitly for the
// operation (`default` stands for an unexpected 500 only), every header the listed response
// documents must be there (unless marked `x-conditional: true`), and every header sent must be
// documented or be one of the standard ones every response may carry.
func checkListed(op *openapi3.Operation, resp *http.Response) error {
	ref := op.Responses.Status(resp.StatusCode)
	if ref == nil {
		if resp.StatusCode != http.StatusInternalServerError {
			return fmt.Errorf("status %d is not listed for operation %s (default stands for 500 only)", resp.StatusCode, op.OperationID)
		}
		ref = op.Responses.Default()
	}
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("status %d is not listed for operation %s", resp.StatusCode, op.OperationID)
	}
	var errs []error
	documented := map[string]bool{}
	for name, h := range ref.Value.Headers {
		name = http.CanonicalHeaderKey(name)
		documented[name] = true
		if h.Value == nil || h.Value.Extensions["x-conditional"] == true {
			continue
		}
		if _, ok := resp.Header[name]; !ok {
			errs = append(errs, fmt.Errorf("documented header %s missing on %d of %s", name, resp.StatusCode, op.OperationID))
		}
	}
	for name := range resp.Header {
		if !documented[name] && !standardHeader(name) {
			errs = append(errs, fmt.Errorf("header %s on %d of %s is not documented", name, resp.StatusCode, op.OperationID))
		}
	}
	return errors.Join(errs...)
}

// standardHeader tells the headers any response may carry without being listed per operation:
// HTTP's own, the security headers every response has, CORS, and X-Request-Id (stated once in
// the spec's description).
func standardHeader(name string) bool {
	switch name {
	case "Content-Type", "Content-Length", "Date", "Vary", "Connection", "Keep-Alive", "Transfer-Encoding",
		"X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options", "X-Request-Id":
		return true
	}
	return strings.HasPrefix(name, "Access-Control-")
}

var problemCode = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)+$`)

// checkProblem holds every error answer to the problem-document rules.
func checkProblem(resp *http.Response, body []byte) error {
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		if strings.HasPrefix(ct, "text/html") {
			return nil // browser pages that the spec lists as text/html
		}
		return fmt.Errorf("error answer with Content-Type %q, want application/problem+json", ct)
	}
	var p api.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("problem document: %w", err)
	}
	if p.Status != resp.StatusCode {
		return fmt.Errorf("problem status %d on a %d answer", p.Status, resp.StatusCode)
	}
	if !problemCode.MatchString(p.Code) {
		return fmt.Errorf("problem code %q is not a dotted lower-case code", p.Code)
	}
	return nil
}

// LogSink keeps the server's JSON log lines so tests can read what was "mailed".
type LogSink struct {
	mu    sync.Mutex
	lines [][]byte
}

func (l *LogSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, bytes.Clone(p))
	return len(p), nil
}

// Mails returns the mails the log sender wrote, oldest first.
func (l *LogSink) Mails() []Mail {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Mail
	for _, line := range l.lines {
		var m struct {
			Msg     string `json:"msg"`
			To      string `json:"to"`
			Subject string `json:"subject"`
			Text    string `json:"text"`
		}
		if json.Unmarshal(line, &m) == nil && m.Msg == "mail" {
			out = append(out, Mail{To: m.To, Subject: m.Subject, Text: m.Text})
		}
	}
	return out
}

// Mail is one logged mail.
type Mail struct{ To, Subject, Text string }

var linkToken = regexp.MustCompile(`/(?:email-verification|password-reset)/([A-Za-z0-9_-]{16,})`)

// Token extracts the token of the mail's link.
func (m Mail) Token() (string, error) {
	match := linkToken.FindStringSubmatch(m.Text)
	if match == nil {
		return "", errors.New("no link in mail")
	}
	return match[1], nil
}

// WaitMail waits (bounded) for a mail to addr whose subject contains subject.
func (l *LogSink) WaitMail(t testing.TB, addr, subject string) Mail {
	t.Helper()
	var found Mail
	testenv.Eventually(t, 10*time.Second, func() bool {
		mails := l.Mails()
		for i := len(mails) - 1; i >= 0; i-- {
			if mails[i].To == addr && strings.Contains(mails[i].Subject, subject) {
				found = mails[i]
				return true
			}
		}
		return false
	}, "a mail to %s about %q", addr, subject)
	return found
}

type testWriter struct{ t testing.TB }

// Write sends server logs to the test log only in verbose runs, so failures stay readable.
func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
