package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

func TestPasswordHashing(t *testing.T) {
	cheap := config.PasswordHashing{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	h, err := NewHasher(cheap)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := h.Hash("Correct horse 42")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("PHC encoding: %s", enc)
	}
	if again, _ := h.Hash("Correct horse 42"); again == enc {
		t.Fatal("every hash has its own salt")
	}
	if ok, rehash, err := h.Verify(enc, "Correct horse 42"); !ok || rehash || err != nil {
		t.Fatalf("verify: %v %v %v", ok, rehash, err)
	}
	if ok, _, _ := h.Verify(enc, "correct horse 42"); ok {
		t.Fatal("passwords are taken as typed (case matters)")
	}
	stronger, _ := NewHasher(config.PasswordHashing{MemoryKiB: 128, Iterations: 1, Parallelism: 1})
	if ok, rehash, _ := stronger.Verify(enc, "Correct horse 42"); !ok || !rehash {
		t.Fatal("a hash made with other parameters verifies and asks for a rehash")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5", "$argon2id$v=18$m=64,t=1,p=1$c2FsdA$a2V5", "$argon2id$v=19$m=x$c2FsdA$a2V5"} {
		if _, _, err := h.Verify(bad, "x"); err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}

func TestPasswordRules(t *testing.T) {
	cases := map[string]int{
		"Correct horse 42": 0,
		"alllowercase":     1, // one class
		"Ab1":              1, // too short
		"jane_doe":         1, // equals the id (two classes: lower + symbol)
		"JANE_DOE":         1, // case-insensitively
	}
	for pw, want := range cases {
		if got := PasswordProblems(pw, "jane_doe", "Jane", "jane@example.com"); len(got) != want {
			t.Errorf("%q: %v", pw, got)
		}
	}
}

func TestAccessTokens(t *testing.T) {
	s := NewSigner([]byte(strings.Repeat("k", 32)), 15*time.Minute)
	now := time.Now()
	raw, claims, err := s.Issue(7, 9, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Parse(raw)
	if err != nil || got.UserID != 7 || got.SessionID != 9 || got.TokenID != claims.TokenID {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	other := NewSigner([]byte(strings.Repeat("o", 32)), 15*time.Minute)
	if _, err := other.Parse(raw); err == nil {
		t.Fatal("a token signed with another key is refused")
	}
	expired, _, _ := s.Issue(7, 9, now.Add(-time.Hour))
	if _, err := s.Parse(expired); err == nil {
		t.Fatal("an expired token is refused")
	}
	if _, err := s.Parse("eyJhbGciOiJub25lIn0.eyJzdWIiOiI3In0."); err == nil {
		t.Fatal("alg=none is refused")
	}
	secret, hash := NewSecret()
	if len(secret) < 40 || string(HashSecret(secret)) != string(hash) {
		t.Fatal("secrets are long and hash consistently")
	}
}

// TestHashingIsGated: at most the gate's slots hash at once, a short queue waits, and beyond
// it callers get ErrBusy (503 with Retry-After) at once instead of piling up memory.
func TestHashingIsGated(t *testing.T) {
	g := newGate(1)
	g.maxWait = time.Minute
	if err := g.enter(); err != nil {
		t.Fatal(err)
	}
	queued := make(chan error, 2)
	for range 2 {
		go func() {
			err := g.enter()
			queued <- err
			if err == nil {
				g.leave()
			}
		}()
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return g.waiting.Load() >= 2 }, "two callers queued")
	third := make(chan error, 1)
	go func() { third <- g.enter() }()
	select {
	case err := <-third:
		if !errors.Is(err, ErrBusy) {
			t.Fatalf("beyond the queue: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a caller beyond the queue must be refused, not queued")
	}
	g.leave() // the queued callers get the slot one after the other
	for range 2 {
		if err := <-queued; err != nil {
			t.Fatalf("queued caller: %v", err)
		}
	}

	// A queued caller gives up after maxWait while the slot stays taken.
	g.maxWait = 10 * time.Millisecond
	if err := g.enter(); err != nil {
		t.Fatal(err)
	}
	if err := g.enter(); !errors.Is(err, ErrBusy) {
		t.Fatalf("after maxWait: %v", err)
	}
	g.leave()
}
