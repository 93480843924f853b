package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/mail"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/bca-app/backend/internal/bca"
)

// validator checks every /api/v1 request against openapi.yaml before a handler sees it: path,
// method, parameters and JSON bodies (types, formats, lengths, enums, required and unknown
// fields). Wrong types are rejected, never coerced. Multipart bodies are checked by the upload
// code while streaming, so they are not buffered here.
type validator struct {
	router   routers.Router
	jsonOpts *openapi3filter.Options
	fileOpts *openapi3filter.Options
	log      *slog.Logger
}

func newValidator(spec *openapi3.T, log *slog.Logger) (*validator, error) {
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi router: %w", err)
	}
	// Authentication is done by our own middleware, which needs the operation's requirements
	// but not kin-openapi's opinion of the credential.
	noAuth := func(context.Context, *openapi3filter.AuthenticationInput) error { return nil }
	formats := []openapi3.SchemaValidationOption{openapi3.WithStringFormatValidator("email", emailFormat{})}
	jsonOpts := &openapi3filter.Options{MultiError: true, AuthenticationFunc: noAuth, SchemaValidationOptions: formats}
	fileOpts := &openapi3filter.Options{MultiError: true, AuthenticationFunc: noAuth, ExcludeRequestBody: true, SchemaValidationOptions: formats}
	return &validator{router: router, jsonOpts: jsonOpts, fileOpts: fileOpts, log: log}, nil
}

func (v *validator) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, params, err := v.router.FindRoute(r)
		switch {
		case errors.Is(err, routers.ErrMethodNotAllowed):
			writeProblem(w, http.StatusMethodNotAllowed, problemOf(r, http.StatusMethodNotAllowed, "request.method_not_allowed", "This path does not accept "+r.Method+"."))
			return
		case err != nil:
			notFound(w, r)
			return
		}
		if info := infoFrom(r.Context()); info != nil {
			info.OperationID = route.Operation.OperationID
		}
		opts := v.jsonOpts
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch {
		case strings.HasPrefix(mt, "multipart/"):
			opts = v.fileOpts
		case r.Body != nil && r.Body != http.NoBody:
			if err := rejectNUL(r); err != nil {
				writeError(w, r, v.log, err)
				return
			}
		}
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
		if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
			writeError(w, r, v.log, validationError(err))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// validationError turns kin-openapi's findings into one 4xx problem naming every bad field.
func validationError(err error) error {
	var fields []bca.FieldError
	status := bca.KindInvalid
	code := "request.invalid"
	var walk func(error)
	walk = func(err error) {
		var multi openapi3.MultiError
		var reqErr *openapi3filter.RequestError
		var schemaErr *openapi3.SchemaError
		var mbe *http.MaxBytesError
		// The outermost wrapper decides: a RequestError wrapping a MultiError also matches
		// errors.As(…, &multi), and taking that branch first lost the parameter's name (every
		// range or pattern violation of a parameter was reported as "body").
		direct, isDirect := err.(*openapi3filter.RequestError)
		switch {
		case errors.As(err, &mbe):
			status, code = bca.KindTooLarge, "request.too_large"
			fields = append(fields, bca.FieldError{Field: "body", Reason: fmt.Sprintf("larger than %d bytes", mbe.Limit)})
		case !isDirect && errors.As(err, &multi):
			for _, e := range multi {
				walk(e)
			}
		case isDirect || errors.As(err, &reqErr):
			if isDirect {
				reqErr = direct
			}
			if errors.Is(reqErr.Err, openapi3filter.ErrInvalidRequired) && reqErr.Parameter == nil && reqErr.RequestBody != nil {
				fields = append(fields, bca.FieldError{Field: "body", Reason: "is required"})
				return
			}
			var nested openapi3.MultiError
			if errors.As(reqErr.Err, &nested) {
				for _, e := range nested {
					walkWithParam(reqErr, e, &fields, &status, &code)
				}
				return
			}
			walkWithParam(reqErr, reqErr.Err, &fields, &status, &code)
		case errors.As(err, &schemaErr):
			fields = append(fields, schemaField("", schemaErr))
		default:
			fields = append(fields, bca.FieldError{Field: "request", Reason: err.Error()})
		}
	}
	walk(err)
	return bca.E(status, code, "The request is invalid.", fields...)
}

func walkWithParam(reqErr *openapi3filter.RequestError, err error, fields *[]bca.FieldError, kind *bca.Kind, code *string) {
	prefix := ""
	if reqErr.Parameter != nil {
		prefix = reqErr.Parameter.Name
	}
	var schemaErr *openapi3.SchemaError
	var parseErr *openapi3filter.ParseError
	var mbe *http.MaxBytesError
	if err == nil {
		err = errors.New(reqErr.Reason)
	}
	switch {
	case errors.As(err, &mbe):
		*kind, *code = bca.KindTooLarge, "request.too_large"
		*fields = append(*fields, bca.FieldError{Field: "body", Reason: fmt.Sprintf("larger than %d bytes", mbe.Limit)})
	case errors.As(err, &schemaErr):
		*fields = append(*fields, schemaField(prefix, schemaErr))
	case errors.As(err, &parseErr):
		field := prefix
		if field == "" {
			field = "body"
		}
		*fields = append(*fields, bca.FieldError{Field: field, Reason: "malformed: " + parseErr.Reason})
	case errors.Is(err, openapi3filter.ErrInvalidRequired):
		*fields = append(*fields, bca.FieldError{Field: prefix, Reason: "is required"})
	case strings.Contains(err.Error(), "Content-Type"):
		*kind, *code = bca.KindUnsupportedMediaType, "request.unsupported_media_type"
		*fields = append(*fields, bca.FieldError{Field: "Content-Type", Reason: "is not accepted here"})
	default:
		field := prefix
		if field == "" {
			field = "body"
		}
		*fields = append(*fields, bca.FieldError{Field: field, Reason: err.Error()})
	}
}

// schemaField names the offending JSON field with a dotted path (profile.data.phone.index).
func schemaField(prefix string, e *openapi3.SchemaError) bca.FieldError {
	parts := e.JSONPointer()
	if prefix != "" {
		parts = append([]string{prefix}, parts...)
	}
	field := strings.Join(parts, ".")
	reason := e.Reason
	if e.SchemaField == "additionalProperties" || strings.HasSuffix(e.Reason, "is unsupported") {
		// kin-openapi points at the enclosing object; name the unknown property itself.
		if _, name, ok := strings.Cut(e.Reason, `"`); ok {
			name, _, _ = strings.Cut(name, `"`)
			parts = append(parts, name)
			field = strings.Join(parts, ".")
		}
		reason = "unknown field"
	}
	if field == "" {
		field = "body"
	}
	return bca.FieldError{Field: field, Reason: reason}
}

// emailFormat accepts a bare address (no display name) as net/mail parses it.
type emailFormat struct{}

func (emailFormat) Validate(v string) error {
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v || a.Name != "" {
		return errors.New("must be an email address")
	}
	return nil
}

// rejectNUL refuses JSON bodies with a NUL character anywhere: PostgreSQL text cannot hold it,
// and no field of this API has a use for it. The body is already size-limited; it is read once
// here and handed on unchanged.
func rejectNUL(r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return validationError(err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if bytes.Contains(body, []byte{0}) || bytes.Contains(bytes.ToLower(body), []byte(`\u0000`)) {
		return bca.Invalid("body", "must not contain NUL characters")
	}
	return nil
}
