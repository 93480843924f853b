// Package sharepage serves what a card's share link opens without signing in
// (docs/product.md §6 "Sharing"): the public card page (/c/{token}), its QR codes
// (/c/{token}/qr.png, /c/{token}/qr.svg), the card's vCard (/c/{token}.vcf) and the card's and
// profile's images (/c/{token}/image, /c/{token}/avatar).
//
// Pages are html/template with embedded assets, no script at all and a strict Content Security
// Policy. Dead and unknown links get a page of the same style that says nothing about the card.
package sharepage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bca-app/backend/internal/card"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/memo"
	"github.com/bca-app/backend/internal/ratelimit"
	"github.com/bca-app/backend/internal/vcard"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// ContentSecurityPolicy allows the page nothing but its own stylesheet and images: no script,
// no frames, no forms, no third-party origin.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// AppLinkPrefix is the app's deep link for saving a shared card.
const AppLinkPrefix = "bca://cards/share/"

// Deps are what the pages need.
type Deps struct {
	Shares  *card.Shares
	Files   *files.Service
	Limiter *ratelimit.Limiter
	// PerMinute is the request budget of one client address over all share routes.
	PerMinute int
	// BaseURL is PUBLIC_BASE_URL: absolute links in tags, vCards and QR codes.
	BaseURL string
	// ClientAddr names the caller for the rate limit.
	ClientAddr func(*http.Request) string
	// Route tells the caller's metrics which operation of openapi.yaml a request is.
	Route func(r *http.Request, operationID string)
	Log   *slog.Logger
}

// Handler serves everything under /c/.
type Handler struct {
	Deps
	card, page *template.Template
	qrs        *memo.Map[string, []byte] // drawn codes by ETag: a code never changes for its token, size and format
}

// New parses the templates.
func New(d Deps) (*Handler, error) {
	base, err := template.New("").ParseFS(templateFS, "templates/layout.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("share page templates: %w", err)
	}
	cardT, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/card.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("share page templates: %w", err)
	}
	errT, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/error.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("share page templates: %w", err)
	}
	if d.Route == nil {
		d.Route = func(*http.Request, string) {}
	}
	return &Handler{Deps: d, card: cardT, page: errT, qrs: memo.New[string, []byte](1024)}, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/c/")
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		h.errorPage(w, r, http.StatusNotFound)
		return
	}
	if asset, ok := strings.CutPrefix(rest, "_assets/"); ok {
		h.asset(w, r, asset)
		return
	}
	token, sub, _ := strings.Cut(rest, "/")
	op := ""
	switch {
	case sub == "" && strings.HasSuffix(token, ".vcf"):
		token, op = strings.TrimSuffix(token, ".vcf"), "getPublicCardVCard"
	case sub == "":
		op = "getPublicCardPage"
	case sub == "qr.png":
		op = "getPublicCardQRPNG"
	case sub == "qr.svg":
		op = "getPublicCardQRSVG"
	case sub == "image":
		op = "getPublicCardImage"
	case sub == "avatar":
		op = "getPublicCardAvatar"
	}
	h.Route(r, op)
	if op == "" {
		h.errorPage(w, r, http.StatusNotFound)
		return
	}
	if !h.allow(w, r) {
		return
	}
	size := DefaultQRSize
	if op == "getPublicCardQRPNG" || op == "getPublicCardQRSVG" {
		var err error
		if size, err = qrSize(r.URL.Query()); err != nil {
			writeProblem(w, http.StatusBadRequest, "request.invalid", "The request is invalid.", err.Error())
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	shared, err := h.Shares.Resolve(ctx, token)
	if err != nil {
		switch {
		case domain.IsKind(err, domain.KindNotFound):
			h.errorPage(w, r, http.StatusNotFound)
		case domain.IsKind(err, domain.KindGone):
			h.errorPage(w, r, http.StatusGone)
		default:
			h.Log.ErrorContext(ctx, "resolve share link", "err", err)
			writeProblem(w, http.StatusInternalServerError, "server.internal", "Something went wrong on our side.", "")
		}
		return
	}
	switch op {
	case "getPublicCardPage":
		h.cardPage(w, r, token, shared)
	case "getPublicCardVCard":
		h.vcard(w, token, shared)
	case "getPublicCardQRPNG":
		h.qr(w, r, token, "png", size)
	case "getPublicCardQRSVG":
		h.qr(w, r, token, "svg", size)
	case "getPublicCardImage":
		h.image(ctx, w, r, shared.Card.PreviewFileID)
	case "getPublicCardAvatar":
		h.image(ctx, w, r, shared.ProfileImageFileID)
	}
}

// allow applies the per-address budget; a Redis failure lets the request through (logged).
func (h *Handler) allow(w http.ResponseWriter, r *http.Request) bool {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	ok, retry, err := h.Limiter.Allow(ctx, "sharepage:addr:"+h.ClientAddr(r), h.PerMinute, time.Minute)
	if err != nil {
		h.Log.WarnContext(ctx, "rate limiter unavailable", "err", err)
		return true
	}
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
		h.errorPage(w, r, http.StatusTooManyRequests)
	}
	return ok
}

func qrSize(q url.Values) (int, error) {
	v, ok := q["size"]
	if !ok {
		return DefaultQRSize, nil
	}
	if len(v) != 1 {
		return 0, errors.New("size: give it once")
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < MinQRSize || n > MaxQRSize {
		return 0, fmt.Errorf("size: must be an integer from %d to %d", MinQRSize, MaxQRSize)
	}
	return n, nil
}

// PublicURL is the page of a share token under PUBLIC_BASE_URL.
func PublicURL(baseURL, token string) string { return strings.TrimRight(baseURL, "/") + "/c/" + token }

func (h *Handler) abs(token, suffix string) string { return PublicURL(h.BaseURL, token) + suffix }

type fieldView struct {
	Label, Value string
	Href         template.URL
}

type cardView struct {
	Lang, Title, Description, CardName, ProfileName, Initial string
	T                                                        texts
	NoIndex                                                  bool
	PageURL, OGImage, VCardURL, QRURL                        string
	AppURL                                                   template.URL // bca: is not a scheme html/template trusts
	CardImageURL, ProfileImageURL                            string
	Fields                                                   []fieldView
}

func (h *Handler) cardPage(w http.ResponseWriter, r *http.Request, token string, s card.Shared) {
	lang := pickLang(r.Header.Get("Accept-Language"))
	t := catalog[lang]
	v := cardView{
		Lang: lang, T: t, Title: s.Card.Name, CardName: s.Card.Name, ProfileName: s.ProfileName,
		Description: fmt.Sprintf(t.Description, s.Card.Name, s.ProfileName),
		NoIndex:     !s.Public, PageURL: h.abs(token, ""), AppURL: template.URL(AppLinkPrefix + token), // token is base64url by Resolve
		VCardURL: "/c/" + token + ".vcf", QRURL: "/c/" + token + "/qr.svg?size=160", OGImage: h.abs(token, "/qr.png"),
	}
	if r, size := utf8.DecodeRuneInString(s.ProfileName); size > 0 {
		v.Initial = strings.ToUpper(string(r))
	}
	if s.Card.PreviewFileID != nil {
		v.CardImageURL = "/c/" + token + "/image"
		v.OGImage = h.abs(token, "/image")
	}
	if s.ProfileImageFileID != nil {
		v.ProfileImageURL = "/c/" + token + "/avatar"
	}
	for _, f := range vcard.Fields(s.Card.Data) {
		v.Fields = append(v.Fields, fieldView{Label: fieldLabel(t, f), Value: f.Value, Href: fieldHref(f)})
	}
	var buf bytes.Buffer
	if err := h.card.ExecuteTemplate(&buf, "layout", v); err != nil {
		h.Log.Error("render share page", "err", err)
		writeProblem(w, http.StatusInternalServerError, "server.internal", "Something went wrong on our side.", "")
		return
	}
	hd := w.Header()
	pageHeaders(hd)
	if v.NoIndex {
		hd.Set("X-Robots-Tag", "noindex, nofollow")
	}
	// no-cache: a revoked link must stop showing the card; the ETag makes revalidation cheap.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Vary", "Accept-Language")
	sum := sha256.Sum256(buf.Bytes())
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	hd.Set("ETag", etag)
	if matchesETag(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

func fieldLabel(t texts, f vcard.Field) string {
	name := t.Fields[f.Key]
	if name == "" {
		name = f.Key
	}
	if f.Label == f.Key || f.Label == "" {
		return name
	}
	return name + " · " + f.Label
}

// fieldHref links the values a phone can act on; anything else stays text.
func fieldHref(f vcard.Field) template.URL {
	switch f.Key {
	case "email":
		if strings.Contains(f.Value, "@") && !strings.ContainsAny(f.Value, " <>\"") {
			return template.URL("mailto:" + url.PathEscape(f.Value))
		}
	case "phone":
		var b strings.Builder
		for _, c := range f.Value {
			if c >= '0' && c <= '9' || c == '+' {
				b.WriteRune(c)
			}
		}
		if b.Len() > 2 {
			return template.URL("tel:" + b.String())
		}
	case "sns":
		if u, err := url.Parse(f.Value); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			return template.URL(u.String())
		}
	}
	return ""
}

func pageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
}

type errorView struct {
	Lang, Title, Heading, Body string
	Status                     int
	T                          texts
	NoIndex                    bool
}

// errorPage answers 404, 410 and 429 in the page's style, saying nothing about any card.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int) {
	lang := pickLang(r.Header.Get("Accept-Language"))
	t := catalog[lang]
	v := errorView{Lang: lang, T: t, Status: status, NoIndex: true}
	switch status {
	case http.StatusGone:
		v.Heading, v.Body = t.GoneTitle, t.GoneBody
	case http.StatusTooManyRequests:
		v.Heading, v.Body = t.TooManyTitle, t.TooManyBody
	default:
		v.Heading, v.Body = t.NotFoundTitle, t.NotFoundBody
	}
	v.Title = v.Heading + " · B.Ca"
	var buf bytes.Buffer
	if err := h.page.ExecuteTemplate(&buf, "layout", v); err != nil {
		h.Log.Error("render error page", "err", err)
	}
	hd := w.Header()
	pageHeaders(hd)
	hd.Set("X-Robots-Tag", "noindex, nofollow")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Vary", "Accept-Language")
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) vcard(w http.ResponseWriter, token string, s card.Shared) {
	c := vcard.Card{Name: s.Card.Name, Rev: s.Card.ModifiedAt, URL: h.abs(token, ""), Source: h.abs(token, ".vcf"),
		Contacts: vcard.Contacts(s.Card.Data)}
	if s.Card.PreviewFileID != nil {
		c.PhotoURL = h.abs(token, "/image")
	}
	var notes []string
	for _, f := range vcard.Fields(s.Card.Data) {
		switch f.Key {
		case "email", "phone", "sns", "address":
		case "title":
			c.Title = f.Value
		case "company", "organization":
			c.Org = f.Value
		default:
			notes = append(notes, f.Label+": "+f.Value)
		}
	}
	notes = append(notes, "B.Ca: "+s.ProfileName)
	c.Note = strings.Join(notes, "\n")
	body := vcard.Encode(c)
	hd := w.Header()
	hd.Set("Content-Type", "text/vcard; charset=utf-8")
	hd.Set("Content-Disposition", `attachment; filename="card.vcf"; filename*=UTF-8''`+url.PathEscape(s.Card.Name)+".vcf")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Robots-Tag", "noindex")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, body)
}

// qrVersion changes the ETags when the drawing of the codes changes.
const qrVersion = "1"

func (h *Handler) qr(w http.ResponseWriter, r *http.Request, token, format string, size int) {
	content := PublicURL(h.BaseURL, token)
	sum := sha256.Sum256([]byte(qrVersion + "\x00" + format + "\x00" + strconv.Itoa(size) + "\x00" + content))
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	hd := w.Header()
	hd.Set("ETag", etag)
	// Short: a revoked link's code must stop being served soon; the ETag makes revalidation cheap.
	hd.Set("Cache-Control", "public, max-age=300")
	hd.Set("X-Robots-Tag", "noindex")
	if matchesETag(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if format == "png" {
		hd.Set("Content-Type", "image/png")
	} else {
		hd.Set("Content-Type", "image/svg+xml")
		hd.Set("Content-Security-Policy", "default-src 'none'")
	}
	body, cached := h.qrs.Get(etag)
	var err error
	if !cached {
		if format == "png" {
			body, err = qrPNG(content, size)
		} else {
			body, err = qrSVG(content, size)
		}
		if err == nil {
			h.qrs.Put(etag, body)
		}
	}
	if err != nil {
		hd.Del("ETag")
		h.Log.Error("draw qr code", "err", err)
		writeProblem(w, http.StatusInternalServerError, "server.internal", "Something went wrong on our side.", "")
		return
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func matchesETag(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, candidate := range strings.Split(header, ",") {
		c := strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if c == "*" || c == etag {
			return true
		}
	}
	return false
}

// image streams an image of the shared card (never a redirect: the page's CSP allows images
// from its own origin only).
func (h *Handler) image(ctx context.Context, w http.ResponseWriter, r *http.Request, fileID *int64) {
	if fileID == nil {
		h.errorPage(w, r, http.StatusNotFound)
		return
	}
	d, err := h.Files.OpenShared(ctx, *fileID)
	if err != nil {
		if domain.IsKind(err, domain.KindNotFound) {
			h.errorPage(w, r, http.StatusNotFound)
			return
		}
		h.Log.ErrorContext(ctx, "open shared image", "err", err)
		writeProblem(w, http.StatusInternalServerError, "server.internal", "Something went wrong on our side.", "")
		return
	}
	defer d.Body.Close()
	etag := strconv.Quote(d.File.Md5)
	hd := w.Header()
	hd.Set("ETag", etag)
	hd.Set("Cache-Control", "public, max-age=300")
	if matchesETag(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", d.File.ContentType)
	hd.Set("Content-Length", strconv.FormatInt(d.File.Size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(w, d.Body)
	}
}

func (h *Handler) asset(w http.ResponseWriter, r *http.Request, name string) {
	if name != "card.css" && name != "icon.svg" {
		h.errorPage(w, r, http.StatusNotFound)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=86400")
	http.ServeFileFS(w, r, assetFS, "assets/"+name)
}

func writeProblem(w http.ResponseWriter, status int, code, title, detail string) {
	doc := map[string]any{"type": "about:blank", "title": title, "status": status, "code": code}
	if detail != "" {
		doc["detail"] = detail
		doc["errors"] = []map[string]string{{"field": "size", "reason": detail}}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(doc)
}
