package testenv

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestDelayProxyDropsARequestItsClientGaveUpOn: a POST (the way every SQS call comes) held
// longer than its client waits is never forwarded, so a test that plays a slow SQS does not
// have calls arrive that the code under test already abandoned.
func TestDelayProxyDropsARequestItsClientGaveUpOn(t *testing.T) {
	var arrived atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { arrived.Add(1) }))
	t.Cleanup(target.Close)
	p := NewDelayProxy(t, target.URL)
	const hold = 500 * time.Millisecond
	p.SetDelay(func(*http.Request) time.Duration { return hold })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/queue", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a request held 500 ms answered within its 100 ms deadline")
	}
	if !WaitFor(5*time.Second, func() bool { return p.Held() == 0 }) {
		t.Fatal("the request is still held 5 s after its client left")
	}
	time.Sleep(2 * hold) // past the hold: a forward would have arrived by now
	if n := arrived.Load(); n != 0 {
		t.Errorf("%d requests reached the server after their client left; want none", n)
	}

	// A request whose client waits is forwarded after the hold, body and all.
	resp, err := http.Post(p.URL+"/queue", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := arrived.Load(); n != 1 {
		t.Errorf("%d requests arrived from a client that waited; want 1", n)
	}
}
