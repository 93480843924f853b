// Package auth owns credentials: password hashing, access tokens, refresh secrets and the
// check every authenticated request goes through.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/crypto/argon2"

	"github.com/bca-app/backend/internal/config"
)

// Hasher hashes passwords with argon2id and encodes them in the PHC string format
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash), so the cost can change without invalidating old hashes.
type Hasher struct {
	params config.PasswordHashing
	// dummy is a real hash of a random password: verifying against it when the account does
	// not exist costs the same time as a real check, so timing does not reveal unknown ids.
	dummy string
}

const (
	saltLen = 16
	keyLen  = 32
)

// NewHasher builds a Hasher with the given cost.
func NewHasher(params config.PasswordHashing) (*Hasher, error) {
	h := &Hasher{params: params}
	dummy, err := h.Hash(rand.Text())
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Hash returns the encoded argon2id hash of password.
func (h *Hasher) Hash(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	p := h.params
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether password matches encoded, and whether the hash should be replaced
// because it was made with other parameters than the current ones.
func (h *Hasher) Verify(encoded, password string) (ok, needsRehash bool, err error) {
	var p config.PasswordHashing
	var version int
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, false, errors.New("password hash: not an argon2id PHC string")
	}
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, false, fmt.Errorf("password hash: unsupported version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil {
		return false, false, fmt.Errorf("password hash: parameters %q: %w", parts[3], err)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, false, fmt.Errorf("password hash: salt: %w", err)
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return false, false, fmt.Errorf("password hash: key: %w", err)
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && p != h.params, nil
}

// VerifyDummy spends the time of one verification; used when no account matched.
func (h *Hasher) VerifyDummy(password string) {
	_, _, _ = h.Verify(h.dummy, password)
}

// PasswordProblems checks the password rules of docs/product.md §3 beyond length (the spec checks
// 8–1024): at least two character classes and not equal to the id, nickname or email.
// It returns a reason per failed rule; none means acceptable.
func PasswordProblems(password string, others ...string) []string {
	var lower, upper, digit, symbol bool
	for _, r := range password {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			symbol = true
		}
	}
	var problems []string
	classes := 0
	for _, b := range []bool{lower, upper, digit, symbol} {
		if b {
			classes++
		}
	}
	if n := len([]rune(password)); n < 8 || n > 1024 {
		problems = append(problems, "must be 8 to 1024 characters long")
	}
	if classes < 2 {
		problems = append(problems, "must mix at least two of lower case, upper case, digits and symbols")
	}
	for _, o := range others {
		if o != "" && strings.EqualFold(password, o) {
			problems = append(problems, "must differ from the id, nickname and email")
			break
		}
	}
	return problems
}
