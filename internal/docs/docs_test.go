package docs

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

const specURL = "/openapi.yaml"

// newMux mounts the handler the way HandlerWithErrors's doc comment tells callers to.
func newMux() *http.ServeMux {
	h := http.StripPrefix("/docs", HandlerWithErrors(specURL, http.NotFound, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	}))
	mux := http.NewServeMux()
	mux.Handle("/docs", h)
	mux.Handle("/docs/", h)
	return mux
}

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

// refs returns the src and href attribute values of an HTML page.
func refs(page string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`\b(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

func TestIndex(t *testing.T) {
	rec := get(t, newMux(), "/docs/")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	body := rec.Body.String()
	if !strings.HasPrefix(body, "<!DOCTYPE html>") {
		t.Errorf("body does not look like HTML: %.80q", body)
	}
	if !strings.Contains(body, `data-spec-url="`+specURL+`"`) {
		t.Errorf("index does not reference the spec URL %q", specURL)
	}
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self';", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if cc := rec.Header().Get("Cache-Control"); cc != cacheRevalidate {
		t.Errorf("Cache-Control = %q, want %q", cc, cacheRevalidate)
	}
}

// The page must work offline and under its own CSP: nothing it loads may
// come from another host, and there is no inline script.
func TestIndexIsSelfContained(t *testing.T) {
	body := get(t, newMux(), "/docs/").Body.String()
	if m := regexp.MustCompile(`(?i)https?://`).FindString(body); m != "" {
		t.Errorf("index contains an absolute URL (%q)", m)
	}
	for _, ref := range refs(body) {
		if u, err := url.Parse(ref); err != nil || u.Scheme != "" || u.Host != "" {
			t.Errorf("reference %q is not same-origin", ref)
		}
	}
	if regexp.MustCompile(`<script[^>]*>[^<\s]`).MatchString(body) {
		t.Error("index has an inline script, which the CSP would block")
	}
}

func TestReferencedAssets(t *testing.T) {
	mux := newMux()
	page := get(t, mux, "/docs/").Body.String()
	wantType := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
		".png": "image/png",
	}
	seen := map[string]bool{}
	for _, ref := range refs(page) {
		u, err := url.Parse(ref)
		if err != nil {
			t.Fatalf("parse %q: %v", ref, err)
		}
		target := (&url.URL{Path: "/docs/"}).ResolveReference(u)
		rec := get(t, mux, target.String())
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s: status %d", target, rec.Code)
			continue
		}
		if rec.Body.Len() == 0 {
			t.Errorf("GET %s: empty body", target)
		}
		ext := target.Path[strings.LastIndex(target.Path, "."):]
		if got := rec.Header().Get("Content-Type"); got != wantType[ext] {
			t.Errorf("GET %s: Content-Type %q, want %q", target, got, wantType[ext])
		}
		if got := rec.Header().Get("Cache-Control"); got != cacheImmutable {
			t.Errorf("GET %s: Cache-Control %q, want %q", target, got, cacheImmutable)
		}
		seen[target.Path] = true
	}
	for _, p := range []string{"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui-standalone-preset.js", "/docs/assets/swagger-ui.css", "/docs/assets/init.js"} {
		if !seen[p] {
			t.Errorf("index does not reference %s", p)
		}
	}
}

func TestInitConfig(t *testing.T) {
	body := get(t, newMux(), "/docs/assets/init.js").Body.String()
	for _, want := range []string{"persistAuthorization: true", "tryItOutEnabled: true", "deepLinking: true", "validatorUrl: null"} {
		if !strings.Contains(body, want) {
			t.Errorf("init.js lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`(?i)https?://`).FindString(body); m != "" {
		t.Errorf("init.js contains an absolute URL (%q)", m)
	}
}

func TestUnversionedAssetRevalidates(t *testing.T) {
	mux := newMux()
	rec := get(t, mux, "/docs/assets/swagger-ui.css")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != cacheRevalidate {
		t.Errorf("Cache-Control = %q, want %q", cc, cacheRevalidate)
	}
	req := httptest.NewRequest(http.MethodGet, "/docs/assets/swagger-ui.css", nil)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("conditional GET: status = %d, want 304", rec.Code)
	}
}

func TestNotFound(t *testing.T) {
	mux := newMux()
	for _, target := range []string{
		"/docs/assets/nope.js",
		"/docs/assets/",
		"/docs/assets",
		"/docs/index.html",
		"/docs/index.html.tmpl",
		"/docs/assets/../index.html.tmpl",
	} {
		if rec := get(t, mux, target); rec.Code != http.StatusNotFound {
			// The mux may answer path cleaning with a redirect; it must not
			// lead anywhere that serves content either.
			if loc := rec.Header().Get("Location"); rec.Code/100 == 3 && get(t, mux, loc).Code == http.StatusNotFound {
				continue
			}
			t.Errorf("GET %s: status %d, want 404", target, rec.Code)
		}
	}
}

func TestRedirect(t *testing.T) {
	for target, want := range map[string]string{
		"/docs":     "/docs/",
		"/docs?x=1": "/docs/?x=1",
	} {
		rec := get(t, newMux(), target)
		if rec.Code != http.StatusMovedPermanently {
			t.Errorf("GET %s: status %d, want 301", target, rec.Code)
		}
		if loc := rec.Header().Get("Location"); loc != want {
			t.Errorf("GET %s: Location %q, want %q", target, loc, want)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	rec := httptest.NewRecorder()
	newMux().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/docs/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", rec.Code)
	}
}
