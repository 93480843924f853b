package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// NewLogger returns the JSON logger of the service at the configured level. Lines are buffered
// (one write per 64 KiB or per logFlushEvery instead of one per line: the access log writes a
// line per request) and warnings and errors flush at once, with everything before them.
func NewLogger(level string) *slog.Logger { return NewLoggerTo(os.Stderr, level) }

// NewLoggerTo is NewLogger writing to out (benchmarks measure the production logger this way).
func NewLoggerTo(out io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(strings.ToUpper(level)))
	w := newLogWriter(out, logFlushEvery)
	return slog.New(flushingHandler{Handler: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}), w: w, plain: true})
}

const logFlushEvery = 200 * time.Millisecond

// logWriter buffers whole lines and flushes them on a timer.
type logWriter struct {
	mu  sync.Mutex
	buf *bufio.Writer
}

func newLogWriter(out io.Writer, every time.Duration) *logWriter {
	w := &logWriter{buf: bufio.NewWriterSize(out, 64<<10)}
	go func() {
		for range time.Tick(every) {
			w.Flush()
		}
	}()
	return w
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// Flush writes out what is buffered.
func (w *logWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.buf.Flush()
}

// flushingHandler flushes the buffer after every record at warning level or above, so problems
// reach the log at once (and a crash right after an error loses at most info lines).
type flushingHandler struct {
	slog.Handler
	w *logWriter
	// plain: no attributes or groups of its own, so a pre-rendered line (JSONLines) is the
	// line the handler would have written.
	plain bool
}

// JSONLines is where the access log writes the JSON lines it renders itself (whole lines, one
// Write each), or nil when the handler adds attributes or groups.
func (h flushingHandler) JSONLines() io.Writer {
	if !h.plain {
		return nil
	}
	return h.w
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.w.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{Handler: h.Handler.WithAttrs(attrs), w: h.w}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{Handler: h.Handler.WithGroup(name), w: h.w}
}

// NewHTTPServer returns the server with timeouts that bound slow clients. WriteTimeout is left
// unset because downloads and event streams are long; handlers bound their own work.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// Serve answers HTTP on ln until ctx ends, then drains (README: deployment):
//  1. /readyz answers 503 at once, and for SHUTDOWN_DELAY everything else is served as before,
//     so a load balancer's health checks take the process out of rotation first;
//  2. the listener closes (no new connections; idle keep-alive connections close) and live
//     chat streams end with a `retry:` hint, so their clients reconnect elsewhere;
//  3. in-flight requests may finish within SHUTDOWN_TIMEOUT; then the remaining connections
//     are closed.
//
// A drain returns nil, also when it had to cut requests off (that is logged).
func Serve(ctx context.Context, a *App, ln net.Listener) error {
	srv := NewHTTPServer(a.Handler)
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	drain := a.Config.Shutdown
	a.Log.Info("shutting down: not ready; draining", "delay", drain.Delay, "timeout", drain.Timeout)
	if a.Drain != nil {
		a.Drain.NotReady()
	}
	if drain.Delay > 0 {
		time.Sleep(drain.Delay)
	}
	if a.Drain != nil {
		a.Drain.Stop()
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), drain.Timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.Log.Warn("in-flight requests did not finish within SHUTDOWN_TIMEOUT; closing their connections", "err", err)
		_ = srv.Close()
	}
	a.Log.Info("drained")
	return nil
}
