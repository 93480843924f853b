package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/bca-app/backend/internal/app"
)

// TestProductionLoggerTakesAccessLines: the production logger offers its writer for the access
// log's pre-rendered lines, which land between slog's own, each a whole JSON line; a logger
// with attributes of its own does not offer it (its lines would lack them).
func TestProductionLoggerTakesAccessLines(t *testing.T) {
	var out bytes.Buffer
	log := app.NewLoggerTo(&out, "info")
	h, ok := log.Handler().(interface{ JSONLines() io.Writer })
	if !ok || h.JSONLines() == nil {
		t.Fatal("the production handler offers no writer for pre-rendered lines")
	}
	if with, ok := log.With("component", "chat").Handler().(interface{ JSONLines() io.Writer }); ok && with.JSONLines() != nil {
		t.Fatal("a logger with attributes of its own offers the plain writer")
	}
	log.Info("before")
	if _, err := h.JSONLines().Write([]byte(`{"msg":"request"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	log.Warn("after") // flushes
	var msgs []string
	for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		var rec struct{ Msg string }
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		msgs = append(msgs, rec.Msg)
	}
	if len(msgs) != 3 || msgs[0] != "before" || msgs[1] != "request" || msgs[2] != "after" {
		t.Fatalf("lines %q", msgs)
	}
}
