package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

func TestFlagsRefuseContradictions(t *testing.T) {
	for _, args := range [][]string{
		{"-signup", "-signin"},
		{"-pid", "-3"},
		{"-c", "0"},
		{"-path", "api/v1/ping"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestReadRSSOfThisProcess(t *testing.T) {
	rss, err := readRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 {
		t.Fatalf("RSS of a running Go test is %d bytes, below 1 MiB", rss)
	}
	if _, err := readRSS(1 << 30); err == nil {
		t.Fatal("a process that does not exist was read")
	}
}

// TestSignInLoad runs the -signin scenario against a stand-in that records what it is sent:
// one sign-up, then only sign-ins carrying that account's credentials, and a peak RSS printed.
func TestSignInLoad(t *testing.T) {
	var signups, signins, wrong atomic.Int64
	var login, password atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		switch r.URL.Path {
		case "/api/v1/account/signup":
			signups.Add(1)
			login.Store(body["id"])
			password.Store(body["password"])
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"access_token":"t"}`))
		case "/api/v1/account/signin":
			if r.Method != http.MethodPost || body["login"] != login.Load() || body["password"] != password.Load() {
				wrong.Add(1)
			}
			signins.Add(1)
			_, _ = w.Write([]byte(`{"access_token":"t"}`))
		default:
			wrong.Add(1)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	var out bytes.Buffer
	err := run(context.Background(), []string{"-url", srv.URL, "-signin", "-c", "4", "-n", "40", "-pid", strconv.Itoa(os.Getpid())}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if signups.Load() != 1 || signins.Load() != 41 || wrong.Load() != 0 {
		t.Fatalf("signups %d, signins %d (want 1 and 40 + the first probe), wrong %d", signups.Load(), signins.Load(), wrong.Load())
	}
	if !strings.Contains(out.String(), "peak RSS") || !strings.Contains(out.String(), "200: 40") {
		t.Fatalf("report:\n%s", out.String())
	}
}

// TestHotPathLoad runs the -hotpath scenario against a stand-in that checks each request: the
// profile is created once, the sync poll carries the token (and the 304 the ETag it was told),
// getProfile names the created profile as the acting one; every route gets a line.
func TestHotPathLoad(t *testing.T) {
	var bad atomic.Int64
	var profiles, cards atomic.Int64
	const etag = `"0123abcd"`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authed := r.Header.Get("Authorization") == "Bearer t"
		switch {
		case r.URL.Path == "/api/v1/account/signup":
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"access_token":"t"}`))
		case r.URL.Path == "/api/v1/ping":
			_, _ = w.Write([]byte(`{}`))
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/profiles" && authed:
			profiles.Add(1)
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":77}`))
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/cards" && authed && r.Header.Get("X-Profile-Id") == "77":
			var card struct {
				Name string `json:"name"`
			}
			if json.NewDecoder(r.Body).Decode(&card) != nil || card.Name == "" {
				bad.Add(1)
			}
			cards.Add(1)
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":1}`))
		case r.URL.Path == "/api/v1/profiles/77" && authed && r.Header.Get("X-Profile-Id") == "77":
			_, _ = w.Write([]byte(`{"id":77}`))
		case r.URL.Path == "/api/v1/account" && authed:
			_, _ = w.Write([]byte(`{}`))
		case r.URL.Path == "/api/v1/sync" && authed:
			w.Header().Set("ETag", etag)
			w.Header().Set("Sync-Pending", "false")
			w.Header().Set("Content-Length", "4096")
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			_, _ = w.Write(bytes.Repeat([]byte{1}, 4096))
		default:
			bad.Add(1)
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-url", srv.URL, "-hotpath", "-c", "2", "-n", "20"}, &out); err != nil {
		t.Fatal(err)
	}
	report := out.String()
	if bad.Load() != 0 || profiles.Load() != 1 || cards.Load() != hotPathCards || strings.Contains(report, "UNEXPECTED") {
		t.Fatalf("%d unexpected requests, %d profiles and %d cards created:\n%s", bad.Load(), profiles.Load(), cards.Load(), report)
	}
	for _, want := range []string{"sync file 4096 bytes", "ping", "getProfile", "getMyAccount", "headSync", "getSync304", "getSyncFull", "getSyncFull / ping"} {
		if !strings.Contains(report, want) {
			t.Fatalf("no %q in the report:\n%s", want, report)
		}
	}
}
