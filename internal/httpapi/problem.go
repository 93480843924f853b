package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/txn"
)

// clientGone reports whether the client closed the connection (or cancelled the request)
// before the answer.
func clientGone(r *http.Request) bool {
	return errors.Is(r.Context().Err(), context.Canceled) && errors.Is(context.Cause(r.Context()), context.Canceled)
}

// statusOf maps each domain error kind to its HTTP status; the one place this mapping lives.
var statusOf = map[domain.Kind]int{
	domain.KindInvalid:              http.StatusBadRequest,
	domain.KindUnauthenticated:      http.StatusUnauthorized,
	domain.KindForbidden:            http.StatusForbidden,
	domain.KindNotFound:             http.StatusNotFound,
	domain.KindConflict:             http.StatusConflict,
	domain.KindPreconditionFailed:   http.StatusPreconditionFailed,
	domain.KindPreconditionRequired: http.StatusPreconditionRequired,
	domain.KindTooLarge:             http.StatusRequestEntityTooLarge,
	domain.KindUnsupportedMediaType: http.StatusUnsupportedMediaType,
	domain.KindRateLimited:          http.StatusTooManyRequests,
	domain.KindUnavailable:          http.StatusServiceUnavailable,
	domain.KindGone:                 http.StatusGone,
	domain.KindInternal:             http.StatusInternalServerError,
}

// problemFor converts any error into the status and problem document to answer with. Errors
// that are not domain errors are internal: logged with their detail, answered without it.
func problemFor(err error) (int, api.Problem, *domain.Error) {
	e, ok := domain.AsError(err)
	if !ok {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e = domain.E(domain.KindTooLarge, "request.too_large", "The request body is larger than "+strconv.FormatInt(mbe.Limit, 10)+" bytes.")
		} else if unavailable(err) {
			e = errUnavailable
		} else {
			e = domain.E(domain.KindInternal, "server.internal", "Something went wrong on our side.")
		}
	}
	status := statusOf[e.Kind]
	p := api.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: e.Code}
	if e.Message != "" {
		p.Detail = &e.Message
	}
	if len(e.Fields) > 0 {
		fields := make([]api.FieldError, len(e.Fields))
		for i, f := range e.Fields {
			fields[i] = api.FieldError{Field: f.Field, Reason: f.Reason}
		}
		p.Errors = &fields
	}
	return status, p, e
}

// StatusClientClosed is what the log and the metrics record when the client went away before
// the answer: not a failure of ours.
const StatusClientClosed = 499

// errUnavailable answers a dependency (PostgreSQL, Redis) that is down, hung or overloaded, and
// a write that kept colliding with others after the transaction helper's retries: the request
// changed nothing and may be sent again shortly.
var errUnavailable = func() *domain.Error {
	e := domain.E(domain.KindUnavailable, "server.unavailable", "The service is briefly unavailable; try again shortly.")
	e.RetryAfter = time.Second
	return e
}()

// unavailable reports whether err says a dependency could not answer in time or at all, rather
// than that something is wrong with the request or our code.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, pgx.ErrTxClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || txn.Retryable(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Connection exceptions, too many connections, shutdown and cancelled statements.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "53300" || pgErr.Code == "57P01" ||
			pgErr.Code == "57P02" || pgErr.Code == "57P03" || pgErr.Code == "57014"
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// writeError answers err as a problem document. A client that went away gets nothing (there is
// nobody to read it) and is recorded as 499, not as a failure.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	info := infoFrom(r.Context())
	if info != nil {
		info.Err = err
	}
	if clientGone(r) {
		if rec, ok := w.(*statusRecorder); ok {
			rec.status = StatusClientClosed
		} else {
			w.WriteHeader(StatusClientClosed)
		}
		return
	}
	status, p, e := problemFor(err)
	if info != nil {
		p.RequestId = &info.ID
	}
	switch {
	case status == http.StatusServiceUnavailable:
		log.WarnContext(r.Context(), "dependency unavailable", "err", err)
	case status >= 500:
		log.ErrorContext(r.Context(), "request failed", "err", err)
	}
	h := w.Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
	}
	writeProblem(w, status, p)
}

func writeProblem(w http.ResponseWriter, status int, p api.Problem) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

type apiProblem = api.Problem
