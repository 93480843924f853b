package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/mail"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/bca-app/backend/internal/domain"
)

// validator checks every /api/v1 request against openapi.yaml before a handler sees it, in this
// order: the route; the body limit of the operation (the upload limit only where a file is
// taken); authentication (an anonymous call to a protected operation is a 401, whatever else
// is wrong with it); the media type (only those the operation lists, else 415); then
// parameters and body. A JSON body is checked by domain.CheckJSON (UTF-8, no NUL, one value, no
// duplicate keys, the one depth and key limit) and against its schema (types, formats,
// lengths, patterns, enums, required and unknown fields; wrong types are rejected, never
// coerced). Multipart bodies are streamed: their parts are checked by the form readers
// against the same schema (formField).
type validator struct {
	table    *routeTable
	router   routers.Router
	jsonOpts *openapi3filter.Options
	fileOpts *openapi3filter.Options
	log      *slog.Logger
	// authenticate verifies the caller of a protected operation and returns the request with
	// the principal in its context.
	authenticate func(r *http.Request, operationID string) (*http.Request, error)
	maxBody      int64
	maxUpload    int64
	// unsecured holds the operations as kin-openapi validates them (unsecuredOperations).
	unsecured map[*openapi3.Operation]*openapi3.Operation
}

func newValidator(spec *openapi3.T, log *slog.Logger) (*validator, error) {
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("openapi router: %w", err)
	}
	// Authentication is done by our own middleware, which needs the operation's requirements
	// but not kin-openapi's opinion of the credential.
	noAuth := func(context.Context, *openapi3filter.AuthenticationInput) error { return nil }
	// One map for every validation (WithStringFormatValidator would make one per schema checked).
	formats := []openapi3.SchemaValidationOption{openapi3.WithStringFormatValidators(map[string]openapi3.StringFormatValidator{"email": emailFormat{}})}
	jsonOpts := &openapi3filter.Options{MultiError: true, AuthenticationFunc: noAuth, SchemaValidationOptions: formats}
	fileOpts := &openapi3filter.Options{MultiError: true, AuthenticationFunc: noAuth, ExcludeRequestBody: true, SchemaValidationOptions: formats}
	return &validator{table: newRouteTable(spec, spec.Servers[0].URL), router: router, jsonOpts: jsonOpts, fileOpts: fileOpts, log: log,
		unsecured: unsecuredOperations(spec)}, nil
}

// unsecuredOperations maps each operation of spec to a copy without security requirements: the
// copy is what kin-openapi validates, since with authentication already done (authenticate) its
// own security check would only call noAuth, at a few allocations per request.
func unsecuredOperations(spec *openapi3.T) map[*openapi3.Operation]*openapi3.Operation {
	m := map[*openapi3.Operation]*openapi3.Operation{}
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			c := *op
			c.Security = &openapi3.SecurityRequirements{}
			m[op] = &c
		}
	}
	return m
}

func (v *validator) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, params, ok := v.table.find(r)
		var err error
		if !ok {
			route, params, err = v.router.FindRoute(r)
			if err == nil {
				c := *route
				route = &c
			}
		}
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
		op := route.Operation
		takesFile := op.RequestBody != nil && op.RequestBody.Value.Content.Get("multipart/form-data") != nil
		limit := v.maxBody
		if takesFile {
			limit = v.maxUpload + 64<<10 // room for the multipart framing and the text fields
		}
		if r.ContentLength > limit {
			writeError(w, r, v.log, domain.E(domain.KindTooLarge, "request.too_large", fmt.Sprintf("The request body is larger than %d bytes.", limit)))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		r, err = v.authenticate(r, op.OperationID)
		if err != nil {
			writeError(w, r, v.log, err)
			return
		}
		opts := v.jsonOpts
		// A body sent to an operation that takes none is ignored, as before.
		if hasBody(r) && op.RequestBody != nil {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || op.RequestBody.Value.Content.Get(mt) == nil || mt == "" {
				writeError(w, r, v.log, unsupportedMediaType(op))
				return
			}
			switch {
			case strings.HasPrefix(mt, "multipart/"):
				opts = v.fileOpts
			default:
				if err := checkJSONBody(r); err != nil {
					writeError(w, r, v.log, err)
					return
				}
			}
		}
		if u := v.unsecured[op]; u != nil {
			route.Operation = u // route is this request's own copy (find, FindRoute below)
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
	var fields []domain.FieldError
	status := domain.KindInvalid
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
			status, code = domain.KindTooLarge, "request.too_large"
			fields = append(fields, domain.FieldError{Field: "body", Reason: fmt.Sprintf("larger than %d bytes", mbe.Limit)})
		case !isDirect && errors.As(err, &multi):
			for _, e := range multi {
				walk(e)
			}
		case isDirect || errors.As(err, &reqErr):
			if isDirect {
				reqErr = direct
			}
			if errors.Is(reqErr.Err, openapi3filter.ErrInvalidRequired) && reqErr.Parameter == nil && reqErr.RequestBody != nil {
				fields = append(fields, domain.FieldError{Field: "body", Reason: "is required"})
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
			fields = append(fields, domain.FieldError{Field: "request", Reason: err.Error()})
		}
	}
	walk(err)
	return domain.E(status, code, "The request is invalid.", fields...)
}

func walkWithParam(reqErr *openapi3filter.RequestError, err error, fields *[]domain.FieldError, kind *domain.Kind, code *string) {
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
		*kind, *code = domain.KindTooLarge, "request.too_large"
		*fields = append(*fields, domain.FieldError{Field: "body", Reason: fmt.Sprintf("larger than %d bytes", mbe.Limit)})
	case errors.As(err, &schemaErr):
		*fields = append(*fields, schemaField(prefix, schemaErr))
	case errors.As(err, &parseErr):
		field := prefix
		if field == "" {
			field = "body"
		}
		*fields = append(*fields, domain.FieldError{Field: field, Reason: "malformed: " + parseErr.Reason})
	case errors.Is(err, openapi3filter.ErrInvalidRequired):
		*fields = append(*fields, domain.FieldError{Field: prefix, Reason: "is required"})
	case strings.Contains(err.Error(), "Content-Type"):
		*kind, *code = domain.KindUnsupportedMediaType, "request.unsupported_media_type"
		*fields = append(*fields, domain.FieldError{Field: "Content-Type", Reason: "is not accepted here"})
	default:
		field := prefix
		if field == "" {
			field = "body"
		}
		*fields = append(*fields, domain.FieldError{Field: field, Reason: err.Error()})
	}
}

// schemaField names the offending JSON field with a dotted path (profile.data.phone.index).
func schemaField(prefix string, e *openapi3.SchemaError) domain.FieldError {
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
	return domain.FieldError{Field: field, Reason: reason}
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

// hasBody reports whether the request carries a body (or says it does).
// A chunked body of unknown length is peeked at, so an empty one counts as none.
func hasBody(r *http.Request) bool {
	if r.ContentLength >= 0 || r.Body == nil || r.Body == http.NoBody {
		return r.ContentLength > 0
	}
	br := bufio.NewReader(r.Body)
	_, err := br.Peek(1)
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	return err == nil
}

// unsupportedMediaType is the 415 of an operation sent a media type its spec does not list.
func unsupportedMediaType(op *openapi3.Operation) error {
	var types []string
	if op.RequestBody != nil {
		for mt := range op.RequestBody.Value.Content {
			types = append(types, mt)
		}
	}
	slices.Sort(types)
	accepted := "no body"
	if len(types) > 0 {
		accepted = strings.Join(types, ", ")
	}
	return domain.E(domain.KindUnsupportedMediaType, "request.unsupported_media_type", "This operation accepts "+accepted+".",
		domain.FieldError{Field: "Content-Type", Reason: "is not accepted here"})
}

// checkJSONBody reads a JSON body (already size-limited) once, checks it with domain.CheckJSON and
// hands it on unchanged. An empty body is left to the schema's "required".
func checkJSONBody(r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return validationError(err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return domain.CheckJSON("body", body)
}
