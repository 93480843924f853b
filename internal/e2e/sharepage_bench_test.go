package e2e

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/config"
)

// Benchmarks of the public share routes (docs/product.md §6 "Sharing"): the card page and the
// PNG QR code, each with and without a conditional request (If-None-Match of the last ETag).
//
//	go run ./cmd/bcactl with-services -- go test -run '^$' -bench SharePage -benchtime 5s ./internal/e2e/

func benchSharePage(b *testing.B, path string, conditional bool, want int) {
	e := benchEnv(b, func(c *config.Config) { c.SharePagePerMinute = 1 << 30 })
	f := e.newShareFixture(b, true, nil)
	url := e.Server.URL + "/c/" + *f.share.Token + path
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	etag := ""
	if conditional {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Accept-Language", "ko-KR,ko;q=0.9")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if etag = resp.Header.Get("ETag"); etag == "" {
			b.Fatalf("%s has no ETag", path)
		}
	}
	b.SetParallelism(8)
	measureParallel(b, "req/s", func() func() error {
		return func() error {
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			req.Header.Set("Accept-Language", "ko-KR,ko;q=0.9")
			if etag != "" {
				req.Header.Set("If-None-Match", etag)
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				return fmt.Errorf("%s: %d", path, resp.StatusCode)
			}
			return nil
		}
	})
}

func BenchmarkSharePage(b *testing.B) { benchSharePage(b, "", false, http.StatusOK) }
func BenchmarkSharePageNotModified(b *testing.B) {
	benchSharePage(b, "", true, http.StatusNotModified)
}
func BenchmarkSharePageQRPNG(b *testing.B) { benchSharePage(b, "/qr.png", false, http.StatusOK) }
func BenchmarkSharePageQRPNGNotModified(b *testing.B) {
	benchSharePage(b, "/qr.png", true, http.StatusNotModified)
}
