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
