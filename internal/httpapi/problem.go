package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/internal/bca"
)

// statusOf maps each domain error kind to its HTTP status; the one place this mapping lives.
var statusOf = map[bca.Kind]int{
	bca.KindInvalid:              http.StatusBadRequest,
	bca.KindUnauthenticated:      http.StatusUnauthorized,
	bca.KindForbidden:            http.StatusForbidden,
	bca.KindNotFound:             http.StatusNotFound,
	bca.KindConflict:             http.StatusConflict,
	bca.KindPreconditionFailed:   http.StatusPreconditionFailed,
	bca.KindPreconditionRequired: http.StatusPreconditionRequired,
	bca.KindTooLarge:             http.StatusRequestEntityTooLarge,
	bca.KindUnsupportedMediaType: http.StatusUnsupportedMediaType,
	bca.KindRateLimited:          http.StatusTooManyRequests,
	bca.KindUnavailable:          http.StatusServiceUnavailable,
	bca.KindGone:                 http.StatusGone,
	bca.KindInternal:             http.StatusInternalServerError,
}

// problemFor converts any error into the status and problem document to answer with. Errors
// that are not domain errors are internal: logged with their detail, answered without it.
func problemFor(err error) (int, api.Problem, *bca.Error) {
	e, ok := bca.AsError(err)
	if !ok {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			e = bca.E(bca.KindTooLarge, "request.too_large", "The request body is larger than "+strconv.FormatInt(mbe.Limit, 10)+" bytes.")
		} else {
			e = bca.E(bca.KindInternal, "server.internal", "Something went wrong on our side.")
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

// writeError answers err as a problem document.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, p, e := problemFor(err)
	info := infoFrom(r.Context())
	if info != nil {
		p.RequestId = &info.ID
		info.Err = err
	}
	if status >= 500 {
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
