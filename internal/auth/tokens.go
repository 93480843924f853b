package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
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
	key    []byte
	ttl    time.Duration
	parser *jwt.Parser
}

// SignerDeps configure a Signer.
type SignerDeps struct {
	Key []byte        // the HMAC key (SECRET_KEY); required
	TTL time.Duration // the lifetime of an access token; positive
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
	return &Signer{
		key: d.Key,
		ttl: d.TTL,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(5*time.Second),
		),
	}, nil
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

// Parse verifies signature, issuer, audience and expiry and returns the claims.
func (s *Signer) Parse(raw string) (AccessClaims, error) {
	var claims jwtClaims
	_, err := s.parser.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return s.key, nil })
	if err != nil {
		return AccessClaims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	userID, err := strconv.ParseInt(claims.Subject, 10, 64)
	if err != nil || userID <= 0 || claims.SessionID <= 0 || claims.ID == "" {
		return AccessClaims{}, fmt.Errorf("%w: incomplete claims", ErrInvalidToken)
	}
	return AccessClaims{UserID: userID, SessionID: claims.SessionID, TokenID: claims.ID, ExpiresAt: claims.ExpiresAt.Time}, nil
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
