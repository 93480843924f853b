package e2e

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/config"
)

// The public share pages: docs/product.md §6 "Sharing".

// zbarDecode decodes the QR code in an image file with zbarimg (Debian's zbar-tools), an
// encoder-independent decoder.
func zbarDecode(t *testing.T, path string) string {
	t.Helper()
	if _, err := exec.LookPath("zbarimg"); err != nil {
		t.Fatalf("zbarimg is missing: install zbar-tools (make test does, through scripts/ensure-deps.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", path).Output()
	if err != nil {
		t.Fatalf("zbarimg %s: %v", path, err)
	}
	return strings.TrimRight(string(out), "\n")
}

func TestSharePageQRCodes(t *testing.T) {
	e := New(t)
	f := e.newShareFixture(t, true, nil)
	tok := *f.share.Token
	dir := t.TempDir()

	status, hdr, png := e.Raw(t, "GET", "/c/"+tok+"/qr.png?size=300", "", nil)
	Status(t, "qr.png", status, http.StatusOK, nil)
	if hdr.Get("Content-Type") != "image/png" || !bytes.HasPrefix(png, []byte("\x89PNG")) || hdr.Get("ETag") == "" ||
		!strings.Contains(hdr.Get("Cache-Control"), "max-age") {
		t.Fatalf("qr.png headers %v", hdr)
	}
	pngPath := filepath.Join(dir, "qr.png")
	if err := os.WriteFile(pngPath, png, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := zbarDecode(t, pngPath); got != f.share.Url {
		t.Fatalf("PNG decodes to %q, want %q", got, f.share.Url)
	}

	status, shdr, svg := e.Raw(t, "GET", "/c/"+tok+"/qr.svg", "", nil)
	Status(t, "qr.svg", status, http.StatusOK, nil)
	if shdr.Get("Content-Type") != "image/svg+xml" || !bytes.HasPrefix(svg, []byte("<svg")) {
		t.Fatalf("qr.svg: %v %.80s", shdr, svg)
	}
	svgPath, rasterPath := filepath.Join(dir, "qr.svg"), filepath.Join(dir, "qr-svg.png")
	if err := os.WriteFile(svgPath, svg, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("rsvg-convert"); err != nil {
		t.Fatalf("rsvg-convert is missing: install librsvg2-bin (make test does, through scripts/ensure-deps.sh)")
	}
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(cctx, "rsvg-convert", "-w", "400", "-b", "white", "-o", rasterPath, svgPath).CombinedOutput(); err != nil {
		t.Fatalf("rasterise the SVG: %v %s", err, out)
	}
	if got := zbarDecode(t, rasterPath); got != f.share.Url {
		t.Fatalf("SVG decodes to %q, want %q", got, f.share.Url)
	}

	// Conditional requests: same ETag → 304 with no body; another size → another ETag.
	status, h304, body := e.Raw(t, "GET", "/c/"+tok+"/qr.png?size=300", "", nil, "If-None-Match", hdr.Get("ETag"))
	if status != http.StatusNotModified || len(body) != 0 || h304.Get("ETag") != hdr.Get("ETag") {
		t.Fatalf("conditional qr.png: %d %v %d bytes", status, h304, len(body))
	}
	_, h2, _ := e.Raw(t, "GET", "/c/"+tok+"/qr.png?size=301", "", nil)
	if h2.Get("ETag") == hdr.Get("ETag") {
		t.Fatalf("two sizes share an ETag")
	}

	// Bad input: absurd sizes 400, unknown and garbage tokens 404; nothing changes.
	before := e.Snapshot(t)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/c/" + tok + "/qr.png?size=0", 400},
		{"/c/" + tok + "/qr.png?size=63", 400},
		{"/c/" + tok + "/qr.png?size=2049", 400},
		{"/c/" + tok + "/qr.svg?size=99999999999999999999", 400},
		{"/c/" + tok + "/qr.svg?size=abc", 400},
		{"/c/" + tok + "/qr.svg?size=100&size=200", 400},
		{"/c/" + strings.Repeat("A", 43) + "/qr.png", 404},
		{"/c/garbage/qr.png", 404},
		{"/c/%00%ff/qr.svg", 404},
		{"/c/" + strings.Repeat("x", 5000), 404},
		{"/c/" + tok + "/nothing", 404},
		{"/c/" + tok + ".txt", 404},
		{"/c/", 404},
	} {
		status, h, body := e.Raw(t, "GET", tc.path, "", nil)
		Status(t, tc.path, status, tc.want, body)
		if tc.want == 400 && !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
			t.Fatalf("%s: content type %s", tc.path, h.Get("Content-Type"))
		}
		if tc.want == 404 && !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: content type %s", tc.path, h.Get("Content-Type"))
		}
	}
	status, _, _ = e.Raw(t, "POST", "/c/"+tok, "application/json", []byte("{}"))
	if status == http.StatusOK {
		t.Fatalf("POST to the page answered 200")
	}
	assertUnchanged(t, e, before)

	// A revoked link's codes are gone too.
	e.Exec(t, "UPDATE card_shares SET revoked_at = now() WHERE id = $1", f.share.Id)
	status, _, _ = e.Raw(t, "GET", "/c/"+tok+"/qr.png", "", nil)
	Status(t, "qr of a revoked link", status, http.StatusGone, nil)
	status, _, _ = e.Raw(t, "GET", "/c/"+tok+"/qr.png", "", nil, "If-None-Match", hdr.Get("ETag"))
	Status(t, "conditional qr of a revoked link", status, http.StatusGone, nil)
}

var metaTag = regexp.MustCompile(`<meta (?:property|name)="([^"]+)" content="([^"]*)">`)

func metaTags(body []byte) map[string]string {
	out := map[string]string{}
	for _, m := range metaTag.FindAllSubmatch(body, -1) {
		out[string(m[1])] = string(m[2])
	}
	return out
}

func TestSharePageContent(t *testing.T) {
	e := New(t)
	f := e.newShareFixture(t, true, nil)
	tok := *f.share.Token

	status, hdr, body := e.Raw(t, "GET", "/c/"+tok, "", nil, "Accept-Language", "en-US,en;q=0.9")
	Status(t, "page", status, http.StatusOK, body)
	csp := hdr.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") || strings.Contains(csp, "script-src") {
		t.Fatalf("CSP %q", csp)
	}
	page := html.UnescapeString(string(body))
	for _, want := range []string{`<html lang="en">`, "Jane Kim, ACME", "+82 10 1234 5678", "jane@acme.test", "Head of Cards", "1 Main St, Seoul",
		`href="bca://cards/share/` + tok + `"`, `href="/c/` + tok + `.vcf"`, `href="` + f.share.Url + `"`, "Save to B.Ca", "Download vCard",
		`<meta name="robots" content="noindex, nofollow">`} {
		if !strings.Contains(page, want) {
			t.Fatalf("page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(strings.ToLower(page), "<script") || strings.Contains(page, " on") && regexp.MustCompile(` on[a-z]+=`).MatchString(page) {
		t.Fatalf("the page has script")
	}
	if hdr.Get("X-Robots-Tag") == "" {
		t.Fatalf("private card without X-Robots-Tag")
	}
	status, h304, b304 := e.Raw(t, "GET", "/c/"+tok, "", nil, "Accept-Language", "en-US,en;q=0.9", "If-None-Match", hdr.Get("ETag"))
	if hdr.Get("ETag") == "" || status != http.StatusNotModified || len(b304) != 0 || h304.Get("ETag") != hdr.Get("ETag") {
		t.Fatalf("conditional page: %d %v", status, h304)
	}
	// Fields in their index order: phone (0), email (1), title (2), address (3).
	if a, b, c, d := strings.Index(page, "+82 10"), strings.Index(page, "jane@acme"), strings.Index(page, "Head of"), strings.Index(page, "1 Main"); !(a < b && b < c && c < d) {
		t.Fatalf("fields out of index order: %d %d %d %d", a, b, c, d)
	}
	tags := metaTags(body)
	base := e.Config.PublicBaseURL
	if tags["og:title"] != "Jane Kim, ACME" || tags["og:image"] != base+"/c/"+tok+"/image" || tags["og:url"] != f.share.Url ||
		tags["twitter:card"] != "summary_large_image" || tags["og:description"] == "" || tags["twitter:image"] != tags["og:image"] {
		t.Fatalf("meta tags %v", tags)
	}
	// The images the page shows are served through the link (the API's file route needs a sign-in).
	status, ih, img := e.Raw(t, "GET", "/c/"+tok+"/image", "", nil)
	if status != http.StatusOK || ih.Get("Content-Type") != "image/png" || len(img) == 0 {
		t.Fatalf("card image: %d %v", status, ih)
	}
	status, _, _ = e.Raw(t, "GET", "/c/"+tok+"/avatar", "", nil)
	Status(t, "absent profile image", status, http.StatusNotFound, nil)

	// Korean by Accept-Language.
	status, _, body = e.Raw(t, "GET", "/c/"+tok, "", nil, "Accept-Language", "ko-KR,ko;q=0.9,en;q=0.5")
	Status(t, "korean page", status, http.StatusOK, body)
	if !bytes.Contains(body, []byte(`<html lang="ko">`)) || !bytes.Contains(body, []byte("B.Ca에 저장")) || !bytes.Contains(body, []byte("vCard 다운로드")) {
		t.Fatalf("korean page:\n%s", body)
	}

	// The vCard, from the one encoder.
	status, vh, vcf := e.Raw(t, "GET", "/c/"+tok+".vcf", "", nil)
	Status(t, "vcf", status, http.StatusOK, vcf)
	v := string(vcf)
	for _, want := range []string{"BEGIN:VCARD\r\n", "VERSION:4.0\r\n", "FN:Jane Kim\\, ACME\r\n", "TEL;TYPE=mobile;PREF=1:+82 10 1234 5678\r\n",
		"EMAIL;TYPE=work;PREF=1:jane@acme.test\r\n", "TITLE:Head of Cards\r\n", "ADR;TYPE=office;PREF=1:;;1 Main St\\, Seoul;;;;\r\n",
		"URL:" + f.share.Url + "\r\n", "END:VCARD\r\n"} {
		if !strings.Contains(v, want) {
			t.Fatalf("vCard lacks %q:\n%s", want, v)
		}
	}
	if !strings.HasPrefix(vh.Get("Content-Type"), "text/vcard") || !strings.HasPrefix(vh.Get("Content-Disposition"), "attachment") {
		t.Fatalf("vCard headers %v", vh)
	}
	for _, line := range strings.Split(v, "\r\n") {
		if len(line) > 75 {
			t.Fatalf("unfolded line of %d octets: %q", len(line), line)
		}
	}

	// A public card of a public profile may be indexed.
	pub := e.NewProfile(t, f.owner, map[string]any{"name": "Jane in public", "private": false})
	c := e.NewCard(t, f.owner, pub.Id, map[string]any{"name": "Public card"})
	sh := e.createShare(t, f.owner, c.Id, nil)
	status, hdr, body = e.Raw(t, "GET", "/c/"+*sh.Token, "", nil)
	Status(t, "public page", status, http.StatusOK, body)
	if bytes.Contains(body, []byte("noindex")) || hdr.Get("X-Robots-Tag") != "" {
		t.Fatalf("public card marked noindex")
	}
	if tags := metaTags(body); tags["og:image"] != e.Config.PublicBaseURL+"/c/"+*sh.Token+"/qr.png" || tags["twitter:card"] != "summary" {
		t.Fatalf("og:image without a card image: %v", tags)
	}

	// Dead links: 410 in the same style, nothing about the card.
	e.Exec(t, "UPDATE card_shares SET revoked_at = now() WHERE id = $1", f.share.Id)
	status, hdr, body = e.Raw(t, "GET", "/c/"+tok, "", nil)
	Status(t, "revoked page", status, http.StatusGone, body)
	if bytes.Contains(body, []byte("Jane")) || !bytes.Contains(body, []byte("/c/_assets/card.css")) || hdr.Get("Content-Security-Policy") == "" {
		t.Fatalf("gone page:\n%s", body)
	}
	status, _, body = e.Raw(t, "GET", "/c/"+strings.Repeat("Z", 43), "", nil)
	Status(t, "unknown page", status, http.StatusNotFound, body)
	if !bytes.Contains(body, []byte("noindex")) {
		t.Fatalf("not-found page is indexable")
	}
	status, ah, css := e.Raw(t, "GET", "/c/_assets/card.css", "", nil)
	if status != http.StatusOK || !strings.HasPrefix(ah.Get("Content-Type"), "text/css") || !bytes.Contains(css, []byte("@media")) {
		t.Fatalf("stylesheet: %d %v", status, ah)
	}
}

func TestSharePageRateLimit(t *testing.T) {
	e := New(t, func(c *config.Config) { c.SharePagePerMinute = 3 })
	f := e.newShareFixture(t, false, nil)
	for i := range 3 {
		status, _, body := e.Raw(t, "GET", "/c/"+*f.share.Token, "", nil)
		Status(t, fmt.Sprintf("request %d", i+1), status, http.StatusOK, body)
	}
	status, hdr, body := e.Raw(t, "GET", "/c/"+*f.share.Token+"/qr.png", "", nil)
	Status(t, "over the budget", status, http.StatusTooManyRequests, body)
	if hdr.Get("Retry-After") == "" || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("429 headers %v", hdr)
	}
}
