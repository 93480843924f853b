package testenv

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// DelayProxy is a loopback HTTP proxy in front of the AWS endpoint (moto) that holds chosen
// requests for a while before forwarding them: a slow SQS, or an S3 that stalls a build. A
// request whose client goes away while it is held is never forwarded: the proxy reads the
// body first, since only then does the server watch the connection for the client leaving.
type DelayProxy struct {
	URL string
	// Delay returns how long to hold a request; nil or 0 forwards it at once. Set it before
	// traffic starts, or use SetDelay.
	delay atomic.Pointer[func(*http.Request) time.Duration]
	held  atomic.Int64
}

// NewDelayProxy starts a proxy to target (an http:// URL) on a free loopback port, stopped when
// the test ends.
func NewDelayProxy(t testing.TB, target string) *DelayProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &DelayProxy{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.URL = "http://" + ln.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := p.delay.Load(); f != nil {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return // the client went away mid-body
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			p.held.Add(1) // counted while the rule decides too: a rule may itself wait
			d := (*f)(r)
			gone := false
			if d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					gone = true
				}
			}
			p.held.Add(-1)
			if gone || r.Context().Err() != nil {
				return
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// SetDelay replaces the delay rule.
func (p *DelayProxy) SetDelay(f func(*http.Request) time.Duration) { p.delay.Store(&f) }

// Held is the number of requests being held right now.
func (p *DelayProxy) Held() int { return int(p.held.Load()) }

// IsSQS tells SQS requests (JSON or query protocol, always POST to the root or a queue path)
// from S3 requests (path-style bucket/key).
func IsSQS(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS") ||
		(r.Method == http.MethodPost && strings.Contains(r.Header.Get("Content-Type"), "x-www-form-urlencoded"))
}
