package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

func TestPasswordHashing(t *testing.T) {
	cheap := config.PasswordHashing{MemoryKiB: 64, Iterations: 1, Parallelism: 1}
	h, err := NewHasher(HasherDeps{Params: cheap})
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
	stronger, _ := NewHasher(HasherDeps{Params: config.PasswordHashing{MemoryKiB: 128, Iterations: 1, Parallelism: 1}})
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
	s, err := NewSigner(SignerDeps{Key: []byte(strings.Repeat("k", 32)), TTL: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, claims, err := s.Issue(7, 9, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Parse(raw)
	if err != nil || got.UserID != 7 || got.SessionID != 9 || got.TokenID != claims.TokenID {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	other, _ := NewSigner(SignerDeps{Key: []byte(strings.Repeat("o", 32)), TTL: 15 * time.Minute})
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
	// Tokens made with the same key by the general JWT library: only the shape Issue writes,
	// with every claim right, is accepted.
	key := []byte(strings.Repeat("k", 32))
	sign := func(m jwt.SigningMethod, c jwt.Claims) string {
		raw, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	good := func() jwtClaims {
		return jwtClaims{SessionID: 9, RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Audience: jwt.ClaimStrings{audience},
			Subject: "7", ID: "t1", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))}}
	}
	if _, err := s.Parse(sign(jwt.SigningMethodHS256, good())); err != nil {
		t.Fatalf("a well-formed token: %v", err)
	}
	if _, err := s.Parse(sign(jwt.SigningMethodHS256, jwt.MapClaims{"sid": 9, "iss": issuer, "aud": audience, "sub": "7", "jti": "t1",
		"exp": now.Add(time.Minute).Unix()})); err != nil {
		t.Fatalf("aud as a single string: %v", err)
	}
	for name, mutate := range map[string]func(*jwtClaims){
		"wrong issuer":   func(c *jwtClaims) { c.Issuer = "other" },
		"wrong audience": func(c *jwtClaims) { c.Audience = jwt.ClaimStrings{"other"} },
		"no audience":    func(c *jwtClaims) { c.Audience = nil },
		"no expiry":      func(c *jwtClaims) { c.ExpiresAt = nil },
		"expired":        func(c *jwtClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-10 * time.Second)) },
		"not yet valid":  func(c *jwtClaims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute)) },
		"issued later":   func(c *jwtClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Minute)) },
		"no session":     func(c *jwtClaims) { c.SessionID = 0 },
		"bad subject":    func(c *jwtClaims) { c.Subject = "x7" },
		"no token id":    func(c *jwtClaims) { c.ID = "" },
	} {
		c := good()
		mutate(&c)
		if _, err := s.Parse(sign(jwt.SigningMethodHS256, c)); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
	hs512 := sign(jwt.SigningMethodHS512, good())
	head, rest, _ := strings.Cut(raw, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	flipped := []byte(payload)
	flipped[len(flipped)/2] ^= 1
	for name, bad := range map[string]string{
		"HS512":             hs512,
		"tampered claims":   head + "." + string(flipped) + "." + sig,
		"short signature":   raw[:len(raw)-1],
		"long signature":    raw + "A",
		"extra segment":     raw + ".x",
		"two segments":      head + "." + payload,
		"empty":             "",
		"too long":          raw + strings.Repeat("A", 4096),
		"non-base64 claims": head + ".!!!." + sig,
	} {
		if _, err := s.Parse(bad); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
	secret, hash := NewSecret()
	if len(secret) < 40 || string(HashSecret(secret)) != string(hash) {
		t.Fatal("secrets are long and hash consistently")
	}
}

// A token Parse has seen is remembered, but only until it expires, and remembering it changes
// nothing for any other string, however close to it.
func TestVerifiedTokensStillExpire(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s, err := NewSigner(SignerDeps{Key: []byte(strings.Repeat("k", 32)), TTL: 15 * time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	raw, claims, err := s.Issue(7, 9, now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if got, err := s.Parse(raw); err != nil || got.UserID != 7 || got.SessionID != 9 || got.TokenID != claims.TokenID || !got.ExpiresAt.Equal(claims.ExpiresAt) {
			t.Fatalf("parse %d: %+v %v, want %+v", i, got, err, claims)
		}
	}
	head, rest, _ := strings.Cut(raw, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	for name, bad := range map[string]string{
		"another signature": head + "." + payload + "." + strings.Repeat("A", len(sig)),
		"a byte more":       raw + "A",
		"a byte less":       raw[:len(raw)-1],
	} {
		if _, err := s.Parse(bad); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s next to a remembered token: %v, want ErrInvalidToken", name, err)
		}
	}
	now = claims.ExpiresAt.Add(leeway - time.Second)
	if _, err := s.Parse(raw); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	now = claims.ExpiresAt.Add(leeway)
	for i := range 2 {
		if _, err := s.Parse(raw); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("parse %d after expiry: %v, want ErrInvalidToken", i, err)
		}
	}
}

// The map of verified tokens stays bounded: past maxVerified it starts over, and every token
// still parses.
func TestVerifiedTokensAreBounded(t *testing.T) {
	s, err := NewSigner(SignerDeps{Key: []byte(strings.Repeat("k", 32)), TTL: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := s.Issue(1, 1, time.Now())
	for i := range maxVerified + 10 {
		raw, _, err := s.Issue(int64(i+2), 1, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Parse(raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.verifiedSize.Load(); n > maxVerified {
		t.Errorf("%d tokens remembered, want at most %d", n, maxVerified)
	}
	if _, err := s.Parse(first); err != nil {
		t.Errorf("a token parsed after the map started over: %v", err)
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

// The constructors refuse to start without what they need, naming it.
func TestConstructorsRefuseMissingDeps(t *testing.T) {
	if _, err := NewHasher(HasherDeps{}); err == nil {
		t.Error("NewHasher accepted a zero cost")
	}
	if _, err := NewSigner(SignerDeps{TTL: time.Minute}); err == nil || !strings.Contains(err.Error(), "Key") {
		t.Errorf("NewSigner without a key: err = %v", err)
	}
	if _, err := NewSigner(SignerDeps{Key: []byte(strings.Repeat("k", 32))}); err == nil {
		t.Error("NewSigner accepted a zero token lifetime")
	}
	_, err := NewAuthenticator(AuthenticatorDeps{})
	if err == nil || err.Error() != "auth authenticator: missing dependencies: Log, Queries, Redis, Signer" {
		t.Errorf("NewAuthenticator without dependencies: err = %v", err)
	}
}

// One announcement type ends a session, all of a user's sessions but one, a whole user, or the
// streams acting as a profile.
func TestSessionEndCovers(t *testing.T) {
	const user, other, session, kept, profile = 7, 8, 70, 71, 700
	cases := []struct {
		name                   string
		e                      SessionEnd
		user, session, profile int64
		want                   bool
	}{
		{"the one session", SessionEnd{UserID: user, SessionID: session}, user, session, 0, true},
		{"another session of the user", SessionEnd{UserID: user, SessionID: session}, user, kept, 0, false},
		{"all but the kept session", SessionEnd{UserID: user, KeepSessionID: kept}, user, session, 0, true},
		{"the kept session", SessionEnd{UserID: user, KeepSessionID: kept}, user, kept, 0, false},
		{"a whole user", SessionEnd{UserID: user}, user, kept, profile, true},
		{"another user", SessionEnd{UserID: user}, other, session, 0, false},
		{"the profile, in another user's session", SessionEnd{ProfileID: profile}, other, session, profile, true},
		{"another profile", SessionEnd{ProfileID: profile}, user, session, profile + 1, false},
		{"a user and a profile: the user's other profile", SessionEnd{UserID: user, ProfileID: profile}, user, session, profile + 1, true},
	}
	for _, c := range cases {
		if got := c.e.Ends(c.user, c.session, c.profile); got != c.want {
			t.Errorf("%s: Ends = %v", c.name, got)
		}
	}
}
