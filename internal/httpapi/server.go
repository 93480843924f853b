// Package httpapi is the HTTP layer: it implements the interface generated from openapi.yaml,
// converts between API types and domain values, and maps domain errors to problem documents.
// Business rules live in the services it calls.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	backend "github.com/bca-app/backend"
	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/internal/account"
	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/bca"
	"github.com/bca-app/backend/internal/card"
	"github.com/bca-app/backend/internal/chat"
	"github.com/bca-app/backend/internal/docs"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/moderation"
	"github.com/bca-app/backend/internal/profile"
	"github.com/bca-app/backend/internal/syncsvc"
)

// Deps are what the HTTP layer needs.
type Deps struct {
	Log      *slog.Logger
	Pool     *pgxpool.Pool
	Redis    redis.UniversalClient
	Registry *prometheus.Registry
	Authn    *auth.Authenticator
	Accounts *account.Service
	Files    *files.Service
	Profiles *profile.Service
	Cards    *card.Service
	Chat     *chat.Service
	Sync     *syncsvc.Service
	// Moderation is the admin API; Reports the users' reports (docs/product.md §9).
	Moderation *moderation.Service
	Reports    *moderation.Reporter

	MaxBodyBytes   int64
	MaxUploadBytes int64
	CORSOrigins    []string
	// FileRedirects answers downloads with a presigned redirect where the store supports it.
	FileRedirects bool
	// SecureCookies marks the refresh cookie Secure (off only for plain-http local runs).
	SecureCookies   bool
	RefreshTokenTTL time.Duration
	PublicBaseURL   string
}

// Server implements api.StrictServerInterface.
type Server struct {
	Deps
	security map[string]securityMode
}

var _ api.StrictServerInterface = (*Server)(nil)

type securityMode int

const (
	securityNone securityMode = iota
	securityOptional
	securityRequired
)

// New builds the HTTP handler of the whole service.
func New(d Deps) (http.Handler, error) {
	spec, err := api.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	s := &Server{Deps: d, security: securityModes(spec)}
	v, err := newValidator(spec, d.Log)
	if err != nil {
		return nil, err
	}
	strict := api.NewStrictHandlerWithOptions(s, []api.StrictMiddlewareFunc{s.authenticate}, api.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, r, d.Log, bca.E(bca.KindInvalid, "request.invalid", "The request body could not be read.", bca.FieldError{Field: "body", Reason: err.Error()}))
		},
		ResponseErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) { writeError(w, r, d.Log, err) },
	})
	apiMux := http.NewServeMux()
	apiHandler := api.HandlerWithOptions(strict, api.StdHTTPServerOptions{
		BaseURL:    "/api/v1",
		BaseRouter: apiMux,
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, r, d.Log, bca.E(bca.KindInvalid, "request.invalid", "The request is invalid.", bca.FieldError{Field: "request", Reason: err.Error()}))
		},
	})

	root := http.NewServeMux()
	root.Handle("/api/v1/", s.limitBody(v.middleware(apiHandler)))
	root.Handle("/api/v1/admin/", s.adminGate(s.limitBody(v.middleware(apiHandler))))
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	root.HandleFunc("GET /readyz", s.readyz)
	root.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{Registry: d.Registry}))
	root.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(backend.OpenAPISpec)
	})
	docsHandler := http.StripPrefix("/docs", docs.Handler("/openapi.yaml"))
	root.Handle("/docs", docsHandler)
	root.Handle("/docs/", docsHandler)
	root.HandleFunc("/", notFound)

	m := newMetrics(d.Registry)
	return observe(d.Log, m, secureHeaders(cors(d.CORSOrigins, root))), nil
}

// securityModes reads from the spec which operations need, accept or ignore a bearer token, so
// the contract stays the single source of that rule.
func securityModes(spec *openapi3.T) map[string]securityMode {
	modes := map[string]securityMode{}
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			reqs := spec.Security
			if op.Security != nil {
				reqs = *op.Security
			}
			var anonymous, bearer bool
			for _, req := range reqs {
				if len(req) == 0 {
					anonymous = true
				} else {
					bearer = true
				}
			}
			mode := securityNone
			switch {
			case bearer && anonymous:
				mode = securityOptional
			case bearer:
				mode = securityRequired
			}
			modes[op.OperationID] = mode
		}
	}
	return modes
}

// limitBody caps JSON bodies; uploads get their own, larger limit enforced while streaming.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := s.MaxBodyBytes
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
			limit = s.MaxUploadBytes + 64<<10 // room for the multipart framing
		}
		if r.ContentLength > limit {
			writeError(w, r, s.Log, bca.E(bca.KindTooLarge, "request.too_large", fmt.Sprintf("The request body is larger than %d bytes.", limit)))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// authenticate runs before every generated handler: operations whose spec requires a bearer
// token get a verified principal in the context or a 401.
func (s *Server) authenticate(next api.StrictHandlerFunc, operationID string) api.StrictHandlerFunc {
	op := strings.ToLower(operationID[:1]) + operationID[1:]
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, request any) (any, error) {
		mode := s.security[op]
		raw, hasToken := bearerToken(r)
		if mode == securityNone || (mode == securityOptional && !hasToken) {
			return next(ctx, w, r, request)
		}
		if !hasToken {
			return nil, bca.Unauthenticated("auth.missing_token", "Sign in and send Authorization: Bearer <access token>.")
		}
		p, err := s.Authn.Authenticate(ctx, raw, actingHeader(r))
		if err != nil {
			s.Log.DebugContext(ctx, "authentication failed", "err", err)
			if bca.IsKind(err, bca.KindInternal) || !isAuthFailure(err) {
				return nil, err
			}
			return nil, bca.Unauthenticated("auth.invalid_token", "The access token is invalid, expired or revoked.")
		}
		if info := infoFrom(ctx); info != nil {
			info.Principal = &p
		}
		return next(withPrincipal(ctx, p), w, r, request)
	}
}

// actingHeader is the X-Profile-Id the request names, 0 when absent. Malformed values never
// reach here for operations that declare the header (the validator refused them); elsewhere
// the header is ignored.
func actingHeader(r *http.Request) int64 {
	id, err := strconv.ParseInt(r.Header.Get("X-Profile-Id"), 10, 64)
	if err != nil || id < 1 {
		return 0
	}
	return id
}

func isAuthFailure(err error) bool { return errors.Is(err, auth.ErrUnauthenticated) }

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p auth.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principal returns the authenticated caller; operations that require authentication always
// have one.
func principal(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(auth.Principal)
	return p, ok
}

func mustPrincipal(ctx context.Context) (auth.Principal, error) {
	p, ok := principal(ctx)
	if !ok {
		return auth.Principal{}, bca.Unauthenticated("auth.missing_token", "Sign in first.")
	}
	return p, nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "redis": "ok"}
	status := http.StatusOK
	if err := s.Pool.Ping(ctx); err != nil {
		checks["postgres"], status = err.Error(), http.StatusServiceUnavailable
	}
	if err := s.Redis.Ping(ctx).Err(); err != nil {
		checks["redis"], status = err.Error(), http.StatusServiceUnavailable
	}
	writeJSON(w, status, checks)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// client describes the caller's origin for rate limits and session records.
func client(ctx context.Context, deviceToken *string) account.Client {
	c := account.Client{DeviceToken: deviceToken}
	if info := infoFrom(ctx); info != nil {
		c.Address, c.UserAgent = info.ClientAddr, info.UserAgent
	}
	return c
}
