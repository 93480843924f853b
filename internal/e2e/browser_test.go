package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/bca-app/backend/internal/testenv"
)

// artifactsDir is where the browser test keeps its screenshots: $BCA_TEST_ARTIFACTS, or
// .artifacts/ at the repository root (git-ignored).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BCA_TEST_ARTIFACTS")
	if dir == "" {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, ".artifacts")
	}
	dir = filepath.Join(dir, "share-page")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newChromium starts Debian's headless chromium with a fresh profile and no network chatter.
func newChromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is missing: install Debian's chromium (make test does, through scripts/ensure-deps.sh)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

func TestSharePageInChromium(t *testing.T) {
	e := New(t)
	f := e.newShareFixture(t, true, nil)
	pageURL := e.Server.URL + "/c/" + *f.share.Token
	ctx := newChromium(t)
	artifacts := artifactsDir(t)

	for _, width := range []int64{360, 1280} {
		shot := func(suffix string) {
			buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot: %v", err)
			}
			if err := os.WriteFile(filepath.Join(artifacts, fmt.Sprintf("card-%d%s.png", width, suffix)), buf, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 800), chromedp.Navigate(pageURL), chromedp.WaitVisible("#card-name")); err != nil {
			t.Fatalf("open the page at %d px: %v", width, err)
		}
		name, err := chromedp.Run(ctx, chromedp.Text("#card-name"))
		if err != nil || name != "Jane Kim, ACME" {
			t.Fatalf("visible name at %d px: %q %v", width, name, err)
		}
		fields, err := chromedp.Run(ctx, chromedp.Text("dl.fields"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"+82 10 1234 5678", "jane@acme.test", "Head of Cards", "1 Main St, Seoul", "Phone · mobile"} {
			if !strings.Contains(fields, want) {
				t.Fatalf("visible fields at %d px lack %q: %q", width, want, fields)
			}
		}
		for _, m := range []struct{ sel, want string }{
			{`meta[property="og:title"]`, "Jane Kim, ACME"},
			{`meta[property="og:image"]`, e.Config.PublicBaseURL + "/c/" + *f.share.Token + "/image"},
			{`meta[name="twitter:card"]`, "summary_large_image"},
			{`meta[name="robots"]`, "noindex, nofollow"},
		} {
			v, err := chromedp.Run(ctx, chromedp.AttributeValue(m.sel, "content"))
			if err != nil || v.Value != m.want {
				t.Fatalf("%s at %d px: %q %v", m.sel, width, v.Value, err)
			}
		}
		// The layout fits the viewport, the card image loaded under the CSP, and the QR code
		// shows on wide screens only.
		checks, err := chromedp.Run(ctx, chromedp.Evaluate[[]bool](`[
			document.documentElement.scrollWidth <= window.innerWidth,
			document.querySelector('.card-image').complete && document.querySelector('.card-image').naturalWidth > 0,
			getComputedStyle(document.querySelector('.qr')).display !== 'none',
			document.querySelector('#save').getBoundingClientRect().width > 0.7 * Math.min(window.innerWidth, 480) - 48,
			document.scripts.length === 0
		]`))
		if err != nil {
			t.Fatal(err)
		}
		if !checks[0] || !checks[1] || checks[2] != (width >= 768) || !checks[3] || !checks[4] {
			shot("-failed")
			t.Fatalf("layout at %d px: fits %v, image %v, qr shown %v, wide button %v, no script %v", width, checks[0], checks[1], checks[2], checks[3], checks[4])
		}
		shot("")
	}

	// Follow the vCard link: the browser downloads the card's vCard.
	downloads := t.TempDir()
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
		return err
	}), chromedp.Click("#vcard")); err != nil {
		t.Fatalf("click the vCard link: %v", err)
	}
	var vcf []byte
	testenv.WaitFor(30*time.Second, func() bool {
		files, _ := filepath.Glob(filepath.Join(downloads, "*.vcf"))
		if len(files) == 1 {
			if b, err := os.ReadFile(files[0]); err == nil && strings.HasSuffix(string(b), "END:VCARD\r\n") {
				vcf = b
				return true
			}
		}
		return false
	})
	if !strings.Contains(string(vcf), "FN:Jane Kim\\, ACME\r\n") || !strings.Contains(string(vcf), "TEL;TYPE=mobile;PREF=1:+82 10 1234 5678\r\n") {
		entries, _ := os.ReadDir(downloads)
		t.Fatalf("downloaded vCard (files %v):\n%s", entries, vcf)
	}
}
