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
	"github.com/bca-app/backend/internal/card"
	"github.com/bca-app/backend/internal/chat"
	"github.com/bca-app/backend/internal/docs"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/memo"
	"github.com/bca-app/backend/internal/moderation"
	"github.com/bca-app/backend/internal/profile"
	"github.com/bca-app/backend/internal/ratelimit"
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
	Shares   *card.Shares
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
	SecureCookies bool
	PublicBaseURL string
	// RequestTimeout is the budget of one request: every PostgreSQL and Redis call it makes
	// runs under this deadline (live streams excepted). Zero means 10s.
	RequestTimeout time.Duration

	// ShareLimiter and SharePagePerMinute bound requests per client address to the public share
	// pages (/c/…).
	ShareLimiter       *ratelimit.Limiter
	SharePagePerMinute int

	// Drain is the graceful stop: /readyz and the live streams follow it (nil: never).
	Drain *Drain
}

// Server implements api.StrictServerInterface.
type Server struct {
	Deps
	security      map[string]securityMode
	profileBodies *memo.Map[profileBodyKey, []byte] // getProfile's encoded answers, by version
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
	s := &Server{Deps: d, security: securityModes(spec), profileBodies: memo.New[profileBodyKey, []byte](memoProfileBodies)}
	v, err := newValidator(spec, d.Log)
	if err != nil {
		return nil, err
	}
	v.authenticate, v.maxBody, v.maxUpload = s.authenticateRequest, d.MaxBodyBytes, d.MaxUploadBytes
	strict := api.NewStrictHandlerWithOptions(s, []api.StrictMiddlewareFunc{s.authenticate}, api.StrictHTTPServerOptions{
		RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, r, d.Log, domain.E(domain.KindInvalid, "request.invalid", "The request body could not be read.", domain.FieldError{Field: "body", Reason: err.Error()}))
		},
		ResponseErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) { writeError(w, r, d.Log, err) },
	})
	apiMux := http.NewServeMux()
	apiHandler := api.HandlerWithOptions(strict, api.StdHTTPServerOptions{
		BaseURL:    "/api/v1",
		BaseRouter: apiMux,
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, r, d.Log, domain.E(domain.KindInvalid, "request.invalid", "The request is invalid.", domain.FieldError{Field: "request", Reason: err.Error()}))
		},
	})

	root := http.NewServeMux()
	root.Handle("/api/v1/", s.budget(v.middleware(apiHandler)))
	root.Handle("/api/v1/admin/", s.adminGate(s.budget(v.middleware(apiHandler))))
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	root.HandleFunc("GET /readyz", s.readyz)
	root.Handle("GET /metrics", promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{Registry: d.Registry}))
	root.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(backend.OpenAPISpec)
	})
	docsHandler := http.StripPrefix("/docs", docs.HandlerWithErrors("/openapi.yaml", notFound, func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusMethodNotAllowed, problemOf(r, http.StatusMethodNotAllowed, "request.method_not_allowed", "This path does not accept "+r.Method+"."))
	}))
	root.Handle("/docs", docsHandler)
	root.Handle("/docs/", docsHandler)
	sharePages, err := s.sharePages()
	if err != nil {
		return nil, err
	}
	root.Handle("/c/", sharePages)
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

// authenticateRequest runs before the request is validated, so an anonymous call to a
// protected operation is a 401 whatever else is wrong with it: operations whose spec requires a
// bearer token get a verified principal in the context or a 401.
func (s *Server) authenticateRequest(r *http.Request, operationID string) (*http.Request, error) {
	ctx := r.Context()
	mode := s.security[operationID]
	raw, hasToken := bearerToken(r)
	if mode == securityNone || (mode == securityOptional && !hasToken) {
		return r, nil
	}
	if !hasToken {
		return r, domain.Unauthenticated("auth.missing_token", "Sign in and send Authorization: Bearer <access token>.")
	}
	// The sync poll reads the user's cached sync state, and getMyAccount the cached account, in
	// the same Redis round trip as the session.
	var extra auth.Extra
	switch operationID {
	case "headSyncFile", "getSyncFile":
		extra = auth.WithSyncState
	case "getMyAccount":
		extra = auth.WithAccount
	}
	p, err := s.Authn.Authenticate(ctx, raw, actingHeader(r), extra)
	if err != nil {
		s.Log.DebugContext(ctx, "authentication failed", "err", err)
		if domain.IsKind(err, domain.KindInternal) || !isAuthFailure(err) {
			return r, err
		}
		return r, domain.Unauthenticated("auth.invalid_token", "The access token is invalid, expired or revoked.")
	}
	// The principal travels in the request's info, which every later layer reads: no copy of
	// the request for it.
	if info := infoFrom(ctx); info != nil {
		info.Principal = &p
		return r, nil
	}
	return r.WithContext(withInfo(ctx, &requestInfo{Principal: &p})), nil
}

// budget gives each request a deadline, so a dependency that hangs costs the caller a bounded
// time; live streams have none (they end with the client, their session or the process).
func (s *Server) budget(next http.Handler) http.Handler {
	limit := s.RequestTimeout
	if limit <= 0 {
		limit = 10 * time.Second
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/chats/stream" {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), limit)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// authenticate runs before every generated handler. The validator has authenticated the request
// already (authenticateRequest); this only refuses, as a second line, a protected operation
// that reached a handler without a principal.
func (s *Server) authenticate(next api.StrictHandlerFunc, operationID string) api.StrictHandlerFunc {
	op := strings.ToLower(operationID[:1]) + operationID[1:]
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, request any) (any, error) {
		if _, ok := principal(ctx); !ok && s.security[op] == securityRequired {
			return nil, domain.Unauthenticated("auth.missing_token", "Sign in and send Authorization: Bearer <access token>.")
		}
		return next(ctx, w, r, request)
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

// principal returns the authenticated caller; operations that require authentication always
// have one.
func principal(ctx context.Context) (auth.Principal, bool) {
	if info := infoFrom(ctx); info != nil && info.Principal != nil {
		return *info.Principal, true
	}
	return auth.Principal{}, false
}

func mustPrincipal(ctx context.Context) (auth.Principal, error) {
	p, ok := principal(ctx)
	if !ok {
		return auth.Principal{}, domain.Unauthenticated("auth.missing_token", "Sign in first.")
	}
	return p, nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	// Callers learn only up or down; the reason (addresses, driver errors) goes to the log.
	checks := map[string]string{"postgres": "ok", "redis": "ok"}
	status := http.StatusOK
	if s.Drain.draining() {
		// Stopping: out of rotation first, while requests are still served.
		checks["process"], status = "draining", http.StatusServiceUnavailable
	}
	if err := s.Pool.Ping(ctx); err != nil {
		s.Log.WarnContext(ctx, "readiness: postgres", "err", err)
		checks["postgres"], status = "unavailable", http.StatusServiceUnavailable
	}
	if err := s.Redis.Ping(ctx).Err(); err != nil {
		s.Log.WarnContext(ctx, "readiness: redis", "err", err)
		checks["redis"], status = "unavailable", http.StatusServiceUnavailable
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
