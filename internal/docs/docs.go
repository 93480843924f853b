// Package docs serves Swagger UI for the API specification.
//
// Everything the page needs is embedded in the binary (see
// scripts/update-swagger-ui.sh), so the docs work without internet access and
// can be served under a Content-Security-Policy that only trusts this origin.
package docs

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// files holds the vendored swagger-ui-dist files plus our init.js under
// assets/, and the index page template.
//
//go:embed assets index.html.tmpl
var files embed.FS

var indexTmpl = template.Must(template.ParseFS(files, "index.html.tmpl"))

const (
	// cacheImmutable is used when the request names the asset's current
	// content hash: those bytes can never change under that URL.
	cacheImmutable = "public, max-age=31536000, immutable"
	// cacheRevalidate is used for the index and unversioned asset URLs, so a
	// deploy is picked up at once; the ETag keeps revalidation cheap.
	cacheRevalidate = "no-cache"
)

// HandlerWithErrors returns a handler for Swagger UI showing the spec at
// specURL (e.g. "/openapi.yaml").
//
// It expects paths relative to its mount point, as http.StripPrefix leaves
// them when given the prefix without a trailing slash:
//
//	h := http.StripPrefix("/docs", docs.HandlerWithErrors("/openapi.yaml", notFound, notAllowed))
//	mux.Handle("/docs", h)
//	mux.Handle("/docs/", h)
//
// The index page is served at "/", assets at "/assets/<name>", and the bare
// prefix redirects to the index so relative asset URLs resolve.
//
// Unknown paths are answered by notFound, and methods other than GET and
// HEAD by notAllowed (after setting Allow), so the server's error format holds
// under the docs prefix too.
//
// It does all its work up front; it panics only if the embedded files are
// inconsistent, which the package tests catch.
func HandlerWithErrors(specURL string, notFound, notAllowed http.HandlerFunc) http.Handler {
	assets := loadAssets()
	var buf bytes.Buffer
	if err := indexTmpl.Execute(&buf, page{SpecURL: specURL, assets: assets}); err != nil {
		panic(fmt.Sprintf("docs: render index: %v", err))
	}
	return &handler{
		assets: assets,
		index:  newAsset(buf.Bytes(), "text/html; charset=utf-8"),
		csp:    contentSecurityPolicy(specURL),

		notFound:   notFound,
		notAllowed: notAllowed,
	}
}

type handler struct {
	assets map[string]asset
	index  asset
	csp    string

	notFound, notAllowed http.HandlerFunc
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.notAllowed(w, r)
		return
	}
	switch p := r.URL.Path; {
	case p == "":
		redirectToSlash(w, r)
	case p == "/":
		w.Header().Set("Content-Security-Policy", h.csp)
		h.index.serve(w, r, cacheRevalidate)
	case strings.HasPrefix(p, "/assets/"):
		a, ok := h.assets[strings.TrimPrefix(p, "/assets/")]
		if !ok {
			h.notFound(w, r)
			return
		}
		cache := cacheRevalidate
		if r.URL.Query().Get("v") == a.hash {
			cache = cacheImmutable
		}
		a.serve(w, r, cache)
	default:
		h.notFound(w, r)
	}
}

// redirectToSlash sends "<prefix>" to "<prefix>/". StripPrefix has already
// removed the prefix from r.URL, so the original path is recovered from
// r.RequestURI, which it leaves untouched.
func redirectToSlash(w http.ResponseWriter, r *http.Request) {
	u, err := url.ParseRequestURI(r.RequestURI)
	// A path starting with "//" would become a scheme-relative redirect to
	// another host.
	if err != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		http.NotFound(w, r)
		return
	}
	target := u.EscapedPath() + "/"
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	http.Redirect(w, r, target, http.StatusMovedPermanently)
}

// contentSecurityPolicy allows scripts and styles from this origin only.
// Swagger UI sets inline style attributes and uses data: (and, for image
// responses, blob:) URLs for images, so those are allowed too. Fetches are
// limited to this origin plus the spec's, if it lives elsewhere.
func contentSecurityPolicy(specURL string) string {
	connect := "'self'"
	if u, err := url.Parse(specURL); err == nil && (u.Scheme == "http" || u.Scheme == "https") &&
		u.Host != "" && !strings.ContainsAny(u.Host, " ;,'") {
		connect += " " + u.Scheme + "://" + u.Host
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self' 'unsafe-inline'",
		"img-src 'self' data: blob:",
		"connect-src " + connect,
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; ")
}

// page is the index template's data.
type page struct {
	SpecURL string
	assets  map[string]asset
}

// Asset returns the URL of an embedded asset. It is relative, so the page
// works under any mount prefix, and carries the content hash, so browsers may
// cache it indefinitely. Unknown names fail the render rather than produce a
// broken link.
func (p page) Asset(name string) (string, error) {
	a, ok := p.assets[name]
	if !ok {
		return "", fmt.Errorf("no embedded asset %q", name)
	}
	return "assets/" + name + "?v=" + a.hash, nil
}

type asset struct {
	body        []byte
	contentType string
	hash        string // content hash; the ETag and the ?v= cache buster
}

func newAsset(body []byte, contentType string) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, contentType: contentType, hash: hex.EncodeToString(sum[:8])}
}

func (a asset) serve(w http.ResponseWriter, r *http.Request, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", `"`+a.hash+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	// ServeContent handles HEAD, Range and If-None-Match against the ETag.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// loadAssets reads the flat assets directory into memory; it is about 2 MB
// and already part of the binary.
func loadAssets() map[string]asset {
	entries, err := files.ReadDir("assets")
	if err != nil {
		panic(fmt.Sprintf("docs: %v", err))
	}
	assets := make(map[string]asset, len(entries))
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		body, err := files.ReadFile("assets/" + e.Name())
		if err != nil {
			panic(fmt.Sprintf("docs: %v", err))
		}
		assets[e.Name()] = newAsset(body, contentType(e.Name()))
	}
	return assets
}

// contentType maps the few extensions we ship. It does not use
// mime.TypeByExtension, whose answers depend on the host's mime.types.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".png":
		return "image/png"
	default: // LICENSE, NOTICE, VERSION, *.LICENSE.txt
		return "text/plain; charset=utf-8"
	}
}
