package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// hotPathCards is how many cards the -hotpath account gets: they make its sync file 36 KiB.
const hotPathCards = 20

// hotRoute is one route of the -hotpath scenario.
type hotRoute struct {
	name   string
	method string
	path   string
	header http.Header
	want   int
}

// hotPath prepares a throwaway account for the routes the app calls all day (a profile, its
// built sync file) and returns them in the order they are loaded, and the sync file's size.
func hotPath(ctx context.Context, client *http.Client, base *url.URL, token string) (routes []hotRoute, syncBytes string, err error) {
	auth := func(extra ...string) http.Header {
		h := http.Header{"Authorization": {"Bearer " + token}}
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	var created struct {
		ID int64 `json:"id"`
	}
	body := []byte(`{"name":"Load profile","private":false,"data":{"phone":{"index":0,"value":{"m":{"index":0,"value":"+82 10 1234 5678"}}}}}`)
	if err := call(ctx, client, base, http.MethodPost, "/api/v1/profiles", auth("Content-Type", "application/json"), body, http.StatusCreated, &created); err != nil {
		return nil, "", fmt.Errorf("create a profile: %w", err)
	}
	acting := strconv.FormatInt(created.ID, 10)
	// Cards give the sync file the size the hot-path figures are stated for (36 KiB).
	note := strings.Repeat("lorem ipsum ", 40)
	for i := range hotPathCards {
		card := fmt.Appendf(nil, `{"name":"card %d","data":{"note":{"index":0,"value":%q}}}`, i, note)
		var ignored struct{}
		if err := call(ctx, client, base, http.MethodPost, "/api/v1/cards", auth("Content-Type", "application/json", "X-Profile-Id", acting), card, http.StatusCreated, &ignored); err != nil {
			return nil, "", fmt.Errorf("create a card: %w", err)
		}
	}
	// Wait (bounded) until the sync file is built and current, so HEAD answers 200 with its ETag.
	var etag, size string
	for deadline := time.Now().Add(30 * time.Second); ; {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, base.JoinPath("/api/v1/sync").String(), nil)
		if err != nil {
			return nil, "", err
		}
		req.Header = auth()
		resp, err := client.Do(req)
		if err != nil {
			return nil, "", fmt.Errorf("HEAD /sync: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && resp.Header.Get("Sync-Pending") == "false" && resp.Header.Get("ETag") != "" {
			etag, size = resp.Header.Get("ETag"), resp.Header.Get("Content-Length")
			break
		}
		if time.Now().After(deadline) {
			return nil, "", fmt.Errorf("the sync file was not built within 30 s (HEAD /sync: %s, Sync-Pending %q)", resp.Status, resp.Header.Get("Sync-Pending"))
		}
		select {
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return []hotRoute{
		{"ping", http.MethodGet, "/api/v1/ping", http.Header{}, http.StatusOK},
		{"getProfile", http.MethodGet, "/api/v1/profiles/" + acting, auth("X-Profile-Id", acting), http.StatusOK},
		{"getMyAccount", http.MethodGet, "/api/v1/account", auth(), http.StatusOK},
		{"headSync", http.MethodHead, "/api/v1/sync", auth(), http.StatusOK},
		{"getSync304", http.MethodGet, "/api/v1/sync", auth("If-None-Match", etag), http.StatusNotModified},
		{"getSyncFull", http.MethodGet, "/api/v1/sync", auth(), http.StatusOK},
	}, size, nil
}

// call makes one JSON request and decodes the answer into out.
func call(ctx context.Context, client *http.Client, base *url.URL, method, path string, h http.Header, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, base.JoinPath(path).String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = h
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, answer)
	}
	return json.Unmarshal(answer, out)
}

// runHotPath loads each hot route for the run's duration, one after the other, and prints one
// line per route and the ratios issue targets are stated in.
func runHotPath(ctx context.Context, client *http.Client, o options, token string, out io.Writer) error {
	base := *o.target
	base.Path, base.RawQuery = "", ""
	routes, syncBytes, err := hotPath(ctx, client, &base, token)
	if err != nil {
		return err
	}
	// Warm up (connections, the server's heap and pools) on ping, unmeasured.
	warm := o
	warm.duration = min(o.duration, 2*time.Second)
	warm.target = base.JoinPath(routes[0].path)
	warm.method, warm.header, warm.body = routes[0].method, routes[0].header, nil
	load(ctx, client, warm)
	rates := map[string]float64{}
	fmt.Fprintf(out, "hot path: %d connections, %s per route, sync file %s bytes\n", o.concurrency, o.duration, syncBytes)
	fmt.Fprintf(out, "%-14s %10s %9s %9s %8s  %s\n", "route", "req/s", "p50", "p99", "p99/p50", "statuses")
	for _, rt := range routes {
		ro := o
		ro.method, ro.header, ro.body = rt.method, rt.header, nil
		target := base
		target.Path = rt.path
		ro.target = &target
		if status, _, err := send(ctx, client, ro); err != nil || status != rt.want {
			return fmt.Errorf("%s: first request answered %d (%v), want %d", rt.name, status, err, rt.want)
		}
		r := load(ctx, client, ro)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rate := float64(len(r.latencies)) / r.elapsed.Seconds()
		rates[rt.name] = rate
		p50, p99 := quantile(r.latencies, 0.50), quantile(r.latencies, 0.99)
		fmt.Fprintf(out, "%-14s %10.0f %9s %9s %8.1f  %v", rt.name, rate, round(p50), round(p99), float64(p99)/float64(max(p50, 1)), r.statuses)
		if r.statuses[rt.want] != len(r.latencies) || len(r.errors) > 0 {
			fmt.Fprintf(out, "  UNEXPECTED (want only %d; errors %v)", rt.want, r.errors)
		}
		fmt.Fprintln(out)
	}
	for _, pair := range [][2]string{{"headSync", "ping"}, {"getSync304", "ping"}, {"getSyncFull", "ping"}} {
		fmt.Fprintf(out, "%-11s / %-5s req/s %.2f\n", pair[0], pair[1], rates[pair[0]]/rates[pair[1]])
	}
	return nil
}
