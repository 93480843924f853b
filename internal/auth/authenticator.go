package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/db"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID    int64
	SessionID int64
	Role      string
	TokenID   string
	ExpiresAt time.Time
	// ActingProfileID is the acting profile the request named, when it is one of the user's
	// live, unlocked profiles (checked with the session); 0 otherwise.
	ActingProfileID int64
}

// IsAdmin reports whether the caller holds the admin role.
func (p Principal) IsAdmin() bool { return p.Role == "admin" }

// ErrUnauthenticated is returned for any unusable credential.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator checks an access token on every request: signature and expiry, the Redis
// blacklist (so a sign-out takes effect at once on every replica), and that the session is live
// and its user neither deactivated nor locked in PostgreSQL, the source of truth.
type Authenticator struct {
	signer *Signer
	rdb    redis.UniversalClient
	prefix string
	q      *db.Queries
	log    *slog.Logger
}

// NewAuthenticator wires the checks together.
func NewAuthenticator(signer *Signer, rdb redis.UniversalClient, keyPrefix string, q *db.Queries, log *slog.Logger) *Authenticator {
	return &Authenticator{signer: signer, rdb: rdb, prefix: keyPrefix, q: q, log: log}
}

func (a *Authenticator) blacklistKey(tokenID string) string {
	return a.prefix + "revoked-token:" + tokenID
}

// Authenticate returns the principal behind a raw access token. actingProfileID (0 for none) is
// the profile the request wants to act as; it is verified in the same query as the session.
func (a *Authenticator) Authenticate(ctx context.Context, raw string, actingProfileID int64) (Principal, error) {
	claims, err := a.signer.Parse(raw)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	revoked, err := a.rdb.Exists(ctx, a.blacklistKey(claims.TokenID)).Result()
	switch {
	case err != nil:
		// The session check below is authoritative for every revocation we make, so a Redis
		// outage degrades to one check instead of locking every user out.
		a.log.WarnContext(ctx, "token blacklist unavailable; relying on the session check", "err", err)
	case revoked > 0:
		return Principal{}, fmt.Errorf("%w: token revoked", ErrUnauthenticated)
	}
	row, err := a.q.GetLiveSessionForAuth(ctx, db.GetLiveSessionForAuthParams{ID: claims.SessionID, UserID: claims.UserID, ActingProfileID: actingProfileID})
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, fmt.Errorf("%w: session ended", ErrUnauthenticated)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("load session: %w", err)
	}
	p := Principal{UserID: row.UserID, SessionID: row.ID, Role: row.Role, TokenID: claims.TokenID, ExpiresAt: claims.ExpiresAt}
	if row.ActingOk {
		p.ActingProfileID = actingProfileID
	}
	return p, nil
}

// Blacklist makes the access token unusable until it expires anyway.
func (a *Authenticator) Blacklist(ctx context.Context, tokenID string, expiresAt time.Time) error {
	ttl := time.Until(expiresAt) + 10*time.Second // beyond the parser's leeway
	if ttl <= 0 {
		return nil
	}
	if err := a.rdb.Set(ctx, a.blacklistKey(tokenID), 1, ttl).Err(); err != nil {
		return fmt.Errorf("blacklist token: %w", err)
	}
	return nil
}
