// Command bcaload puts a local B.Ca API under load: c connections send one request each after
// another for a fixed time (or up to n requests), then it prints throughput, a status histogram
// and latency percentiles. It talks to loopback addresses only, so it cannot be pointed at
// someone else's server.
//
//	bcaload -path /api/v1/ping -c 32 -d 10s
//	bcaload -path /api/v1/account -signup
//	bcaload -method POST -path /api/v1/account/availability -body '{"id":"jane"}'
//	bcaload -signin -c 64 -d 30s -pid $(pgrep -f 'bcactl dev')
//	bcaload -hotpath -c 32 -d 10s
//
// -signin signs up a throwaway account and then loads sign-in with its credentials (the
// password-hashing path). -pid samples the resident memory of that local process during the run
// and prints its peak. -hotpath signs up a throwaway account, gives it a profile and a built sync
// file, then loads ping, getProfile, getMyAccount, HEAD /sync, the 304 GET /sync and the full
// GET /sync for -d each and prints a table with the sync routes' ratios to ping.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const maxDuration = 5 * time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bcaload:", err)
		os.Exit(2)
	}
}

// headerFlag collects repeated -header "Name: value" flags.
type headerFlag struct{ h http.Header }

func (f headerFlag) String() string { return "" }

func (f headerFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("%q is not \"Name: value\"", v)
	}
	f.h.Add(name, strings.TrimSpace(value))
	return nil
}

type options struct {
	target      *url.URL
	method      string
	body        []byte
	header      http.Header
	concurrency int
	duration    time.Duration
	maxRequests int64
	signup      bool
	signin      bool
	hotpath     bool
	pid         int
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bcaload", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "base URL of the API (loopback only)")
	path := fs.String("path", "/api/v1/ping", "request path (and query)")
	method := fs.String("method", http.MethodGet, "HTTP method")
	body := fs.String("body", "", "request body; @file reads it from a file (Content-Type defaults to application/json)")
	o := options{header: http.Header{}}
	fs.Var(headerFlag{o.header}, "header", `extra header "Name: value" (repeatable)`)
	fs.IntVar(&o.concurrency, "c", 32, "concurrent connections")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "duration of the run (at most 5m)")
	fs.Int64Var(&o.maxRequests, "n", 0, "stop after this many requests (0: no limit)")
	fs.BoolVar(&o.signup, "signup", false, "sign up a throwaway account first and send its access token")
	fs.BoolVar(&o.signin, "signin", false, "sign up a throwaway account first, then load POST /api/v1/account/signin with it")
	fs.BoolVar(&o.hotpath, "hotpath", false, "sign up a throwaway account and load each hot route (ping, getProfile, getMyAccount, the sync poll) for -d")
	fs.IntVar(&o.pid, "pid", 0, "a local process (the server) whose peak resident memory during the run is printed")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.concurrency < 1 || o.concurrency > 4096:
		return o, errors.New("-c must be between 1 and 4096")
	case o.duration <= 0 || o.duration > maxDuration:
		return o, fmt.Errorf("-d must be positive and at most %s", maxDuration)
	case o.maxRequests < 0:
		return o, errors.New("-n must not be negative")
	case o.signup && o.signin, o.hotpath && (o.signup || o.signin):
		return o, errors.New("-signup, -signin and -hotpath exclude each other")
	case o.pid < 0:
		return o, errors.New("-pid must be a process id")
	case *method == "" || strings.ContainsAny(*method, " \t\r\n"):
		return o, fmt.Errorf("-method %q is not an HTTP method", *method)
	}
	o.method = strings.ToUpper(*method)
	if !strings.HasPrefix(*path, "/") {
		return o, fmt.Errorf("-path %q must start with /", *path)
	}
	u, err := url.Parse(strings.TrimSuffix(*base, "/") + *path)
	if err != nil {
		return o, fmt.Errorf("-url/-path: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return o, fmt.Errorf("-url %q must be http or https", *base)
	}
	o.target = u
	if b, ok := strings.CutPrefix(*body, "@"); ok {
		if o.body, err = os.ReadFile(b); err != nil {
			return o, fmt.Errorf("-body: %w", err)
		}
	} else {
		o.body = []byte(*body)
	}
	if len(o.body) > 0 && o.header.Get("Content-Type") == "" {
		o.header.Set("Content-Type", "application/json")
	}
	return o, nil
}

// requireLoopback refuses hosts that are not, or do not resolve only to, loopback addresses.
func requireLoopback(ctx context.Context, host string) error {
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address; bcaload only loads local servers", host)
		}
		return nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return fmt.Errorf("%s resolves to %s, not a loopback address; bcaload only loads local servers", host, a.IP)
		}
	}
	return nil
}

// loopbackDialer refuses, at connect time, any address that is not loopback, so neither a
// changed DNS answer nor a redirect can send the load elsewhere.
func loopbackDialer() *net.Dialer {
	return &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("refusing to connect to %s: not a loopback address", address)
			}
			return nil
		},
	}
}

func newClient(concurrency int) *http.Client {
	tr := &http.Transport{
		DialContext:         loopbackDialer().DialContext,
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if err := requireLoopback(ctx, o.target.Hostname()); err != nil {
		return err
	}
	client := newClient(o.concurrency)
	defer client.CloseIdleConnections()
	if o.signup || o.signin || o.hotpath {
		token, creds, err := signUp(ctx, client, o.target)
		if err != nil {
			return err
		}
		if o.hotpath {
			return runHotPath(ctx, client, o, token, out)
		}
		if o.signup {
			o.header.Set("Authorization", "Bearer "+token)
		} else {
			o.method, o.body = http.MethodPost, creds
			o.target.Path, o.target.RawQuery = "/api/v1/account/signin", ""
			o.header.Set("Content-Type", "application/json")
		}
	}
	var rss *rssSampler
	if o.pid > 0 {
		if rss, err = sampleRSS(o.pid, 50*time.Millisecond); err != nil {
			return err
		}
	}
	// One request first: a wrong URL or a dead server is an error, not a histogram of failures.
	if _, _, err := send(ctx, client, o); err != nil {
		return fmt.Errorf("first request: %w", err)
	}
	r := load(ctx, client, o)
	if rss != nil {
		r.peakRSS = rss.stop()
	}
	r.print(out, o)
	return nil
}

// signUp creates a throwaway account and returns its access token and a sign-in body for it.
func signUp(ctx context.Context, client *http.Client, target *url.URL) (string, []byte, error) {
	suffix := strings.ToLower(rand.Text()[:12])
	password := "Load test " + suffix + " 42"
	body, err := json.Marshal(map[string]string{
		"id": "load_" + suffix, "nickname": "Load " + suffix, "email": "load-" + suffix + "@example.com",
		"password": password,
	})
	if err != nil {
		return "", nil, err
	}
	creds, err := json.Marshal(map[string]string{"login": "load_" + suffix, "password": password})
	if err != nil {
		return "", nil, err
	}
	u := *target
	u.Path, u.RawQuery = "/api/v1/account/signup", ""
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("sign up: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch resp.StatusCode {
	case http.StatusCreated:
	case http.StatusAccepted:
		return "", nil, errors.New("sign up: the server requires email verification before sign-in (SIGNIN_AFTER_EMAIL_VERIFICATION); -signup cannot get a token")
	default:
		return "", nil, fmt.Errorf("sign up: %s: %s", resp.Status, answer)
	}
	var session struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(answer, &session); err != nil || session.AccessToken == "" {
		return "", nil, fmt.Errorf("sign up: no access token in %s", answer)
	}
	return session.AccessToken, creds, nil
}

// send makes one request and reads the whole answer.
func send(ctx context.Context, client *http.Client, o options) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, o.method, o.target.String(), bytes.NewReader(o.body))
	if err != nil {
		return 0, 0, err
	}
	req.Header = o.header.Clone()
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), err
}

type result struct {
	elapsed   time.Duration
	latencies []time.Duration // of answered requests, sorted
	statuses  map[int]int
	errors    map[string]int
	peakRSS   int64 // bytes; 0 when not sampled
}

// load runs the workers until the duration has passed, n requests were sent, or ctx ends
// (Ctrl-C prints what was measured so far).
func load(ctx context.Context, client *http.Client, o options) result {
	stop, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var (
		mu        sync.Mutex
		r         = result{statuses: map[int]int{}, errors: map[string]int{}}
		remaining atomic.Int64 // requests left to send when -n is set
		wg        sync.WaitGroup
	)
	remaining.Store(o.maxRequests)
	start := time.Now()
	for range o.concurrency {
		wg.Go(func() {
			var local []time.Duration
			statuses, errs := map[int]int{}, map[string]int{}
			for stop.Err() == nil {
				if o.maxRequests > 0 && remaining.Add(-1) < 0 {
					break
				}
				// Requests use ctx, not stop: one in flight when time is up is still measured.
				status, took, err := send(ctx, client, o)
				switch {
				case err != nil && ctx.Err() != nil:
					// interrupted: not a server failure
				case err != nil:
					errs[errorClass(err)]++
				default:
					statuses[status]++
					local = append(local, took)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			r.latencies = append(r.latencies, local...)
			for k, v := range statuses {
				r.statuses[k] += v
			}
			for k, v := range errs {
				r.errors[k] += v
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	slices.Sort(r.latencies)
	return r
}

// errorClass shortens transport errors so the same failure counts once.
func errorClass(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

func (r result) print(w io.Writer, o options) {
	answered := len(r.latencies)
	failed := 0
	for _, n := range r.errors {
		failed += n
	}
	fmt.Fprintf(w, "target     %s %s\n", o.method, o.target)
	fmt.Fprintf(w, "load       %d connections for %s", o.concurrency, o.duration)
	if o.maxRequests > 0 {
		fmt.Fprintf(w, " or %d requests", o.maxRequests)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "requests   %d answered, %d failed in %.2fs\n", answered, failed, r.elapsed.Seconds())
	fmt.Fprintf(w, "throughput %.1f req/s\n", float64(answered)/r.elapsed.Seconds())
	fmt.Fprint(w, "status    ")
	for _, code := range slices.Sorted(maps.Keys(r.statuses)) {
		fmt.Fprintf(w, " %d: %d", code, r.statuses[code])
	}
	fmt.Fprintln(w)
	for _, e := range slices.Sorted(maps.Keys(r.errors)) {
		fmt.Fprintf(w, "error      %d × %s\n", r.errors[e], e)
	}
	if r.peakRSS > 0 {
		fmt.Fprintf(w, "server     peak RSS %.1f MiB (pid %d)\n", float64(r.peakRSS)/(1<<20), o.pid)
	}
	if answered == 0 {
		return
	}
	fmt.Fprintf(w, "latency    p50 %s  p90 %s  p99 %s  max %s\n",
		round(quantile(r.latencies, 0.50)), round(quantile(r.latencies, 0.90)),
		round(quantile(r.latencies, 0.99)), round(r.latencies[answered-1]))
}

// quantile is the nearest-rank quantile q of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
