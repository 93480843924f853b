package domain

import (
	"strings"

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
