package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bca-app/backend/internal/domain"
)

const (
	issuer   = "bca"
	audience = "bca-api"
)

// AccessClaims is what an access token says: who, which session, and the token's own id (jti),
// which sign-out puts on the blacklist.
type AccessClaims struct {
	UserID    int64
	SessionID int64
	TokenID   string
	ExpiresAt time.Time
}

type jwtClaims struct {
	SessionID int64 `json:"sid"`
	jwt.RegisteredClaims
}

// Signer issues and parses HS256 access tokens.
type Signer struct {
	key  []byte
	ttl  time.Duration
	now  func() time.Time
	macs sync.Pool // of HMAC-SHA256 states keyed with key

	// verified maps tokens whose signature and claims checked out (raw token → AccessClaims), so
	// a token's later requests cost a map lookup and the expiry check instead of HMAC, base64
	// and JSON. Only tokens this key signed get in; it is emptied when it reaches maxVerified.
	verified     sync.Map
	verifiedSize atomic.Int64
}

// maxVerified bounds the verified-token map (about 400 bytes a token): more distinct tokens than
// this within a token lifetime only cost re-verification.
const maxVerified = 1 << 14

// SignerDeps configure a Signer.
type SignerDeps struct {
	Key []byte           // the HMAC key (SECRET_KEY); required
	TTL time.Duration    // the lifetime of an access token; positive
	Now func() time.Time // the clock Parse checks expiry against; nil means real time
}

// NewSigner returns a Signer with the given key and token lifetime; it refuses a missing key
// or a lifetime that is not positive.
func NewSigner(d SignerDeps) (*Signer, error) {
	if err := domain.RequireDeps("auth signer", map[string]any{"Key": d.Key}); err != nil {
		return nil, err
	}
	if d.TTL <= 0 {
		return nil, fmt.Errorf("auth signer: token lifetime %s is not positive", d.TTL)
	}
	s := &Signer{key: d.Key, ttl: d.TTL, now: d.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.macs.New = func() any { return hmac.New(sha256.New, d.Key) }
	return s, nil
}

// Issue returns a signed access token for the session.
func (s *Signer) Issue(userID, sessionID int64, now time.Time) (string, AccessClaims, error) {
	c := AccessClaims{UserID: userID, SessionID: sessionID, TokenID: rand.Text(), ExpiresAt: now.Add(s.ttl).Truncate(time.Second)}
	token := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		SessionID: sessionID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Audience:  jwt.ClaimStrings{audience},
			Subject:   strconv.FormatInt(userID, 10),
			ID:        c.TokenID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		},
	})
	signed, err := token.SignedString(s.key)
	if err != nil {
		return "", AccessClaims{}, fmt.Errorf("sign access token: %w", err)
	}
	return signed, c, nil
}

// ErrInvalidToken covers every reason a token is unusable (malformed, bad signature, expired);
// the caller does not learn which.
var ErrInvalidToken = errors.New("invalid access token")

// leeway is the clock skew tolerated on exp, nbf and iat.
const leeway = 5 * time.Second

// tokenHeader is the encoded JOSE header of every token Issue signs. Parse accepts no other: the
// algorithm is fixed by the header bytes themselves, so "alg":"none" or a confused algorithm
// never reaches the signature check.
var tokenHeader = strings.SplitN(mustSign(), ".", 2)[0]

func mustSign() string {
	raw, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{}).SignedString([]byte("header"))
	if err != nil {
		panic(err)
	}
	return raw
}

// tokenPayload is the claims part of an access token as Issue writes it.
// NumericDates are seconds since the epoch; an absent one reads as 0 (1970), which fails the
// expiry check and passes the not-before ones.
type tokenPayload struct {
	SessionID int64         `json:"sid"`
	Issuer    string        `json:"iss"`
	Audience  audienceClaim `json:"aud"`
	Subject   string        `json:"sub"`
	ID        string        `json:"jti"`
	ExpiresAt float64       `json:"exp"`
	NotBefore float64       `json:"nbf"`
	IssuedAt  float64       `json:"iat"`
}

// audienceClaim decodes the aud claim (a string or an array of strings) into whether it names
// this API.
type audienceClaim bool

func (a *audienceClaim) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*a = one == audience
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = audienceClaim(slices.Contains(many, audience))
	return nil
}

// Parse verifies signature, issuer, audience and expiry and returns the claims. It runs on every
// authenticated request, so it checks the one token shape Issue writes directly (fixed header,
// HMAC-SHA256 compared in constant time, then the claims) instead of through the general JWT
// parser, at a fraction of its cost, and remembers the tokens that passed: a token seen before
// only has its expiry checked again (BenchmarkParseAccessToken). Revocation is not Parse's
// business: the Authenticator checks every request in Redis whatever Parse remembers.
func (s *Signer) Parse(raw string) (AccessClaims, error) {
	now := s.now()
	if v, ok := s.verified.Load(raw); ok {
		c := v.(AccessClaims)
		if now.Before(c.ExpiresAt.Add(leeway)) {
			return c, nil
		}
		s.verified.Delete(raw)
		return AccessClaims{}, fmt.Errorf("%w: expired", ErrInvalidToken)
	}
	c, err := s.verify(raw, now)
	if err != nil {
		return AccessClaims{}, err
	}
	if s.verifiedSize.Add(1) > maxVerified {
		s.verified.Clear()
		s.verifiedSize.Store(1)
	}
	s.verified.Store(raw, c)
	return c, nil
}

// verify is Parse for a token not seen before. A token that passes it stays valid until it
// expires: its not-before and issued-at times only recede.
func (s *Signer) verify(raw string, now time.Time) (AccessClaims, error) {
	invalid := func(why string) (AccessClaims, error) {
		return AccessClaims{}, fmt.Errorf("%w: %s", ErrInvalidToken, why)
	}
	if len(raw) > 2048 {
		return invalid("too long")
	}
	header, rest, ok := strings.Cut(raw, ".")
	payload, signature, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(signature, ".") {
		return invalid("malformed")
	}
	if header != tokenHeader {
		return invalid("unexpected header")
	}
	if base64.RawURLEncoding.EncodedLen(sha256.Size) != len(signature) || len(payload) > len(raw) {
		return invalid("malformed signature")
	}
	buf := make([]byte, 0, 2*sha256.Size+base64.RawURLEncoding.DecodedLen(len(payload)))
	sig, err := base64.RawURLEncoding.AppendDecode(buf, []byte(signature))
	if err != nil {
		return invalid("malformed signature")
	}
	mac := s.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write([]byte(raw[:len(header)+1+len(payload)]))
	want := mac.Sum(sig[len(sig):])
	s.macs.Put(mac)
	if !hmac.Equal(want, sig) {
		return invalid("bad signature")
	}
	body, err := base64.RawURLEncoding.AppendDecode(want[len(want):], []byte(payload))
	if err != nil {
		return invalid("malformed claims")
	}
	var c tokenPayload
	if err := json.Unmarshal(body, &c); err != nil {
		return invalid("malformed claims")
	}
	switch {
	case c.Issuer != issuer:
		return invalid("wrong issuer")
	case !bool(c.Audience):
		return invalid("wrong audience")
	case !now.Before(numericDate(c.ExpiresAt).Add(leeway)):
		return invalid("expired")
	case now.Add(leeway).Before(numericDate(c.NotBefore)):
		return invalid("not valid yet")
	case now.Add(leeway).Before(numericDate(c.IssuedAt)):
		return invalid("issued in the future")
	}
	userID, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || userID <= 0 || c.SessionID <= 0 || c.ID == "" {
		return invalid("incomplete claims")
	}
	return AccessClaims{UserID: userID, SessionID: c.SessionID, TokenID: c.ID, ExpiresAt: numericDate(c.ExpiresAt)}, nil
}

// numericDate turns a JWT NumericDate (seconds, possibly fractional) into a time.
func numericDate(v float64) time.Time {
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// NewSecret returns a random URL-safe secret (refresh tokens, email links) and its hash, which
// is all the database keeps.
func NewSecret() (secret string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret)
}

// HashSecret is the stored form of a secret. A fast hash is right here: the secret has 256 bits
// of entropy, so it cannot be guessed from its hash.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}
