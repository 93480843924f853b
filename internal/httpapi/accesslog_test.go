package httpapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestAccessLineMatchesSlog: the access line the middleware renders itself is byte for byte
// the line slog's JSON handler writes for the same record, hostile strings included.
func TestAccessLineMatchesSlog(t *testing.T) {
	at := time.Date(2026, 11, 30, 6, 31, 22, 573456789, time.UTC)
	lines := []accessLine{
		{id: "abc-1", method: "GET", path: "/api/v1/ping", operation: "ping", status: 200, bytes: 41, elapsed: 1234 * time.Microsecond, client: "127.0.0.1"},
		{id: `q"u\o\te`, method: "POST", path: "/api/v1/profiles/\x00\x01\x1f\x7f\t\r\n", operation: "other", status: 404, client: "::1", err: "bad <b>&</b>"},
		{id: "x", method: "other", path: "/\xff\xfe/\u2028\u2029/é/日本/😀", operation: "getProfile", status: 401, bytes: 0, elapsed: 0, client: "10.0.0.1", userID: 42},
		{id: "y", method: "DELETE", path: "/", operation: "deleteCard", status: 204, elapsed: 3 * time.Hour, userID: 1 << 40, err: "line\nbreak \"quoted\" \\ \ufffd"},
		{id: "z", method: "GET", path: "/", operation: "ping", status: 200, elapsed: time.Microsecond, client: ""},
		{id: "w", method: "GET", path: "/", operation: "ping", status: 500, elapsed: 999999 * time.Microsecond},
	}
	for _, l := range lines {
		var want bytes.Buffer
		rec := slog.NewRecord(at, slog.LevelInfo, "request", 0)
		rec.AddAttrs(l.attrs(nil)...)
		if err := slog.NewJSONHandler(&want, nil).Handle(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		if got := l.appendJSON(nil, at); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("line of %+v\n got %s\nwant %s", l, got, want.Bytes())
		}
	}
}

// linesHandler is a JSON handler that takes pre-rendered lines, as the production one does.
type linesHandler struct {
	slog.Handler
	w io.Writer
}

func (h linesHandler) JSONLines() io.Writer { return h.w }

// TestAccessLogWritesWhereTheLoggerWrites: with a handler that takes lines the access log
// renders its own; with any other it logs through slog; below info it writes nothing.
func TestAccessLogWritesWhereTheLoggerWrites(t *testing.T) {
	l := &accessLine{id: "a", method: "GET", path: "/p", operation: "ping", status: 200, client: "c"}
	var direct, viaSlog bytes.Buffer
	newAccessLog(slog.New(linesHandler{Handler: slog.NewJSONHandler(io.Discard, nil), w: &direct})).write(context.Background(), l)
	if !bytes.Contains(direct.Bytes(), []byte(`"msg":"request","request_id":"a","method":"GET","path":"/p"`)) {
		t.Fatalf("pre-rendered line: %q", direct.String())
	}
	newAccessLog(slog.New(slog.NewTextHandler(&viaSlog, nil))).write(context.Background(), l)
	if !bytes.Contains(viaSlog.Bytes(), []byte(`msg=request request_id=a method=GET path=/p`)) {
		t.Fatalf("through slog: %q", viaSlog.String())
	}
	direct.Reset()
	quiet := slog.New(linesHandler{Handler: slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}), w: &direct})
	newAccessLog(quiet).write(context.Background(), l)
	if direct.Len() != 0 {
		t.Fatalf("a logger at warn wrote the access line %q", direct.String())
	}
}
