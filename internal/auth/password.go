// Package auth owns credentials: password hashing, access tokens, refresh secrets and the
// check every authenticated request goes through.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"golang.org/x/crypto/argon2"

	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/domain"
)

// Hasher hashes passwords with argon2id and encodes them in the PHC string format
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash), so the cost can change without invalidating old hashes.
type Hasher struct {
	params config.PasswordHashing
	// dummy is a real hash of a random password: verifying against it when the account does
	// not exist costs the same time as a real check, so timing does not reveal unknown ids.
	dummy string
	gate  *gate
}

// gate lets at most GOMAXPROCS hashes run at once (each holds MemoryKiB of memory and a CPU),
// with a short queue behind them; beyond the queue, or after waiting too long, callers get
// ErrBusy, which the API answers 503 with Retry-After. Memory stays bounded under a sign-in
// storm instead of growing with the number of connections.
type gate struct {
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
	maxWait    time.Duration
}

func newGate(parallel int) *gate {
	return &gate{slots: make(chan struct{}, parallel), maxWaiting: int64(2 * parallel), maxWait: time.Second}
}

// ErrBusy says every password-hashing slot and the queue are taken.
var ErrBusy = func() *domain.Error {
	e := domain.E(domain.KindUnavailable, "auth.busy", "Too many password checks at once; try again shortly.")
	e.RetryAfter = time.Second
	return e
}()

func (g *gate) enter() error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	if g.waiting.Add(1) > g.maxWaiting {
		g.waiting.Add(-1)
		return ErrBusy
	}
	defer g.waiting.Add(-1)
	t := time.NewTimer(g.maxWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	}
}

func (g *gate) leave() { <-g.slots }

const (
	saltLen = 16
	keyLen  = 32
)

// HasherDeps configure a Hasher.
type HasherDeps struct {
	Params config.PasswordHashing // the argon2id cost; every field must be positive
}

// NewHasher builds a Hasher with the given cost; it refuses a cost with a zero field.
func NewHasher(d HasherDeps) (*Hasher, error) {
	if p := d.Params; p.MemoryKiB == 0 || p.Iterations == 0 || p.Parallelism == 0 {
		return nil, fmt.Errorf("auth hasher: password hashing cost %+v has a zero field", p)
	}
	h := &Hasher{params: d.Params, gate: newGate(runtime.GOMAXPROCS(0))}
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
	if err := h.gate.enter(); err != nil {
		return "", err
	}
	defer h.gate.leave()
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
	if err := h.gate.enter(); err != nil {
		return false, false, err
	}
	defer h.gate.leave()
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && p != h.params, nil
}

// VerifyDummy spends the time of one verification; used when no account matched. Its only
// error is ErrBusy, answered like for an existing account.
func (h *Hasher) VerifyDummy(password string) error {
	_, _, err := h.Verify(h.dummy, password)
	if errors.Is(err, ErrBusy) {
		return err
	}
	return nil
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
