package auth

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkParseAccessToken measures the signature and claims check every authenticated
// request makes: in full for a token not seen before, and for one Parse remembers.
func BenchmarkParseAccessToken(b *testing.B) {
	s, err := NewSigner(SignerDeps{Key: []byte(strings.Repeat("k", 32)), TTL: 15 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	raw, _, err := s.Issue(7, 9, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("unseen", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.verify(raw, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("seen", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Parse(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
