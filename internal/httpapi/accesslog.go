package httpapi

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// accessLine is one request of the access log: one JSON line per request at level info.
type accessLine struct {
	id, method, path, operation, client string
	status                              int
	bytes                               int64
	elapsed                             time.Duration
	userID                              int64  // 0: no authenticated caller
	err                                 string // "": none to report
}

// accessLog writes access lines. With the production logger (app.NewLoggerTo) it renders each
// line itself into the logger's buffered writer, byte for byte what slog's JSON handler would
// write for the same record (TestAccessLineMatchesSlog) at a fraction of the cost; with any
// other logger it goes through slog.
type accessLog struct {
	log   *slog.Logger
	lines io.Writer // nil: use log
}

// jsonLineWriter is implemented by a slog handler writing JSON lines that takes pre-rendered
// lines too; JSONLines is nil when the handler adds attributes or groups of its own.
type jsonLineWriter interface{ JSONLines() io.Writer }

func newAccessLog(log *slog.Logger) accessLog {
	a := accessLog{log: log}
	if h, ok := log.Handler().(jsonLineWriter); ok {
		a.lines = h.JSONLines()
	}
	return a
}

var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (a accessLog) write(ctx context.Context, l *accessLine) {
	if !a.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	if a.lines == nil {
		var attrs [10]slog.Attr
		a.log.LogAttrs(ctx, slog.LevelInfo, "request", l.attrs(attrs[:0])...)
		return
	}
	bp := lineBuffers.Get().(*[]byte)
	*bp = l.appendJSON((*bp)[:0], time.Now())
	_, _ = a.lines.Write(*bp)
	lineBuffers.Put(bp)
}

func (l *accessLine) durationMS() float64 { return float64(l.elapsed.Microseconds()) / 1000 }

// attrs are the line's fields as slog attributes, in the order appendJSON writes them.
func (l *accessLine) attrs(a []slog.Attr) []slog.Attr {
	a = append(a, slog.String("request_id", l.id), slog.String("method", l.method), slog.String("path", l.path),
		slog.String("operation", l.operation), slog.Int("status", l.status), slog.Int64("bytes", l.bytes),
		slog.Float64("duration_ms", l.durationMS()), slog.String("client", l.client))
	if l.userID != 0 {
		a = append(a, slog.Int64("user_id", l.userID))
	}
	if l.err != "" {
		a = append(a, slog.String("error", l.err))
	}
	return a
}

// appendJSON appends the line as slog.JSONHandler writes the record of attrs logged at t.
func (l *accessLine) appendJSON(b []byte, t time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","request_id":`...)
	b = appendJSONString(b, l.id)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, l.method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, l.path)
	b = append(b, `,"operation":`...)
	b = appendJSONString(b, l.operation)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(l.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, l.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	// Milliseconds with microsecond resolution: within the range where encoding/json (which
	// slog uses for floats) writes the shortest 'f' form.
	b = strconv.AppendFloat(b, l.durationMS(), 'f', -1, 64)
	b = append(b, `,"client":`...)
	b = appendJSONString(b, l.client)
	if l.userID != 0 {
		b = append(b, `,"user_id":`...)
		b = strconv.AppendInt(b, l.userID, 10)
	}
	if l.err != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, l.err)
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s quoted as slog's JSON handler quotes it: control characters,
// quote and backslash escaped, invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
