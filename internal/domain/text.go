package domain

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// CleanName is how names and identifiers are stored: NFC-normalised and trimmed, so visually
// equal strings compare equal. Passwords never go through it.
func CleanName(s string) string {
	return strings.TrimSpace(norm.NFC.String(s))
}

// Key is the case-insensitive uniqueness key of an id, nickname or email.
func Key(s string) string {
	return cases.Fold().String(CleanName(s))
}

// CutBytes cuts s to at most n bytes on a character boundary, and says whether it cut.
func CutBytes(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}
