package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/redisconn"
)

// Principal is what authentication yields: the caller (access.Caller, which services take)
// and what the same Redis round trip read for the request.
type Principal struct {
	// Caller.ActingProfileID is the acting profile the request named when the session's cached
	// record lists it among the user's live, unlocked profiles; 0 otherwise, and then the HTTP
	// layer checks the id in PostgreSQL.
	access.Caller
	// SyncState is the user's cached sync state (syncsvc), read in the same Redis round trip as
	// the session when the operation asked for it (WithSyncState); SyncStateRead says that read
	// happened ("" with SyncStateRead means nothing cached).
	SyncState     string
	SyncStateRead bool
	// Account is the caller's cached account representation when the operation asked for it
	// (WithAccount) and the cache holds one written under the user's current generation; "" means
	// read it from PostgreSQL (and offer it to CacheAccount).
	Account string
	// generation is the user's cache generation read (or created) by this authentication; ""
	// when Redis could not tell, and then nothing may be cached for this request.
	generation string
}

// Extra names what Authenticate reads besides the session, in the same Redis round trip.
type Extra uint8

const (
	// WithSyncState reads the user's cached sync state (the sync poll).
	WithSyncState Extra = 1 << iota
	// WithAccount reads the user's cached account representation (getMyAccount).
	WithAccount
)

// ErrUnauthenticated is returned for any unusable credential.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator checks an access token on every request: signature and expiry, then ONE Redis
// round trip (an MGET, which concurrent requests share as one pipeline: redisconn.Coalescer)
// that reads the token blacklist, the cached state of the session and the user's cache
// generation (and, for the sync poll, the user's sync state). PostgreSQL, the source of truth,
// is asked only when the cache cannot answer.
//
// The cache is positive: a session is trusted without PostgreSQL only while Redis holds a
// record of it that names the user's current generation. Every change that ends sessions or
// alters what the record holds (sign-out, revocation, password change or reset, deactivation,
// a lock, a role change, a profile deleted) writes a new random generation (UserChanged, or
// Revoking around the change), so all of the user's records go stale at once on every process.
// Losing Redis data (restart, flush, eviction) loses records or generations, which only makes
// requests fall back to PostgreSQL: nothing lost can un-revoke a session, because absence never
// means "allowed". Generations are random, never counters, so a record can not match a
// generation written after a flush.
type Authenticator struct {
	signer *Signer
	rdb    redis.UniversalClient
	reads  *redisconn.Coalescer // the one read of every request, pipelined with its neighbours'
	prefix string
	q      *db.Queries
	log    *slog.Logger
}

const (
	// recordTTL bounds how long a session record is trusted; it is also the worst-case delay of
	// a revocation whose second generation write failed (see Revoking).
	recordTTL = 5 * time.Minute
	// accountTTL bounds how long a cached account representation is served; it is also how long
	// a change whose generation write failed can stay unseen by getMyAccount.
	accountTTL = time.Minute
	// generationTTL outlives every record; a generation that expires only causes misses.
	generationTTL = time.Hour
	sep           = "|"
	endedMark     = "-"
)

// AuthenticatorDeps are the collaborators of the Authenticator.
type AuthenticatorDeps struct {
	Signer    *Signer
	Redis     redis.UniversalClient // the session cache
	KeyPrefix string                // REDIS_KEY_PREFIX
	Queries   *db.Queries           // the truth when the cache cannot answer
	Log       *slog.Logger
}

// NewAuthenticator wires the checks together; it refuses missing dependencies.
func NewAuthenticator(d AuthenticatorDeps) (*Authenticator, error) {
	if err := domain.RequireDeps("auth authenticator", map[string]any{
		"Signer": d.Signer, "Redis": d.Redis, "Queries": d.Queries, "Log": d.Log,
	}); err != nil {
		return nil, err
	}
	reads, err := redisconn.NewCoalescer(d.Redis)
	if err != nil {
		return nil, err
	}
	return &Authenticator{signer: d.Signer, rdb: d.Redis, reads: reads, prefix: d.KeyPrefix, q: d.Queries, log: d.Log}, nil
}

// UserKey is the Redis key of one of the user's cached values. All of a user's keys share the
// hash tag {u<id>}, so one MGET reads them even on a Redis cluster.
func UserKey(prefix string, userID int64, name string) string {
	return prefix + "{u" + strconv.FormatInt(userID, 10) + "}:" + name
}

func (a *Authenticator) generationKey(userID int64) string { return UserKey(a.prefix, userID, "gen") }

func (a *Authenticator) sessionKey(userID, sessionID int64) string {
	return UserKey(a.prefix, userID, "s:"+strconv.FormatInt(sessionID, 10))
}

func (a *Authenticator) accountKey(userID int64) string { return UserKey(a.prefix, userID, "account") }

func (a *Authenticator) blacklistKey(userID int64, tokenID string) string {
	return UserKey(a.prefix, userID, "revoked-token:"+tokenID)
}

// SyncStateKey is where syncsvc caches the user's sync state for the poll.
func SyncStateKey(prefix string, userID int64) string { return UserKey(prefix, userID, "sync") }

// Authenticate returns the principal behind a raw access token. actingProfileID (0 for none) is
// the profile the request wants to act as; extra names the cached values to read as well.
func (a *Authenticator) Authenticate(ctx context.Context, raw string, actingProfileID int64, extra Extra) (Principal, error) {
	claims, err := a.signer.Parse(raw)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	p := Principal{Caller: access.Caller{UserID: claims.UserID, SessionID: claims.SessionID, TokenID: claims.TokenID, ExpiresAt: claims.ExpiresAt}}
	var buf [5]string
	keys := append(buf[:0], a.generationKey(claims.UserID), a.sessionKey(claims.UserID, claims.SessionID), a.blacklistKey(claims.UserID, claims.TokenID))
	if extra&WithSyncState != 0 {
		keys = append(keys, SyncStateKey(a.prefix, claims.UserID))
	}
	if extra&WithAccount != 0 {
		keys = append(keys, a.accountKey(claims.UserID))
	}
	vals, err := a.reads.MGet(ctx, keys...)
	if err != nil {
		// PostgreSQL is authoritative for every revocation, so a Redis outage degrades to the
		// database check instead of locking every user out; nothing is cached meanwhile.
		a.log.WarnContext(ctx, "authentication cache unavailable; checking the session in PostgreSQL", "err", err)
		return a.fromDatabase(ctx, p, actingProfileID, "")
	}
	if vals[2] != nil {
		return Principal{}, fmt.Errorf("%w: token revoked", ErrUnauthenticated)
	}
	gen, record := str(vals[0]), str(vals[1])
	next := 3
	if extra&WithSyncState != 0 {
		p.SyncState, p.SyncStateRead = str(vals[next]), true
		next++
	}
	if extra&WithAccount != 0 {
		p.Account, _ = underGeneration(str(vals[next]), gen)
	}
	if rec, ok := underGeneration(record, gen); ok {
		p.generation = gen
		return fromRecord(p, rec, actingProfileID)
	}
	if gen == "" {
		if gen, err = a.ensureGeneration(ctx, claims.UserID); err != nil {
			a.log.WarnContext(ctx, "authentication cache unavailable; checking the session in PostgreSQL", "err", err)
			gen = ""
		}
	}
	p.generation = gen
	return a.fromDatabase(ctx, p, actingProfileID, gen)
}

// underGeneration returns what a cached value "<generation>|<value>" holds when it was written
// under gen, the user's current generation; anything else is stale.
func underGeneration(cached, gen string) (string, bool) {
	if gen == "" || len(cached) <= len(gen) || !strings.HasPrefix(cached, gen) || cached[len(gen)] != sep[0] {
		return "", false
	}
	return cached[len(gen)+1:], true
}

// CacheAccount offers the caller's account representation, just read from PostgreSQL, to later
// requests of the same user (getMyAccount answers from the authentication read). It is stored
// under the generation this request's authentication read, so a change that committed meanwhile
// (which writes a new generation after its commit: see AccountChanged) leaves it stale from
// birth. A failure only costs later requests a database read.
func (a *Authenticator) CacheAccount(ctx context.Context, p Principal, representation []byte) {
	if p.generation == "" {
		return
	}
	v := make([]byte, 0, len(p.generation)+1+len(representation))
	v = append(append(append(v, p.generation...), sep...), representation...)
	if err := a.rdb.Set(ctx, a.accountKey(p.UserID), v, accountTTL).Err(); err != nil {
		a.log.WarnContext(ctx, "cache account", "err", err)
	}
}

// AccountChanged makes the user's cached account (and session records) stale on every process.
// Every write to the user's row calls it after its commit; if Redis cannot take the new
// generation, the old cached account is served for at most accountTTL.
func (a *Authenticator) AccountChanged(ctx context.Context, userID int64) {
	if err := a.UserChanged(ctx, userID); err != nil {
		a.log.ErrorContext(ctx, "invalidate the cached account after a change", "user_id", userID, "err", err)
	}
}

// fromRecord answers from a cached record: "-" (session ended) or "role|id,id,…".
func fromRecord(p Principal, rec string, acting int64) (Principal, error) {
	if rec == endedMark {
		return Principal{}, fmt.Errorf("%w: session ended", ErrUnauthenticated)
	}
	role, ids, _ := strings.Cut(rec, sep)
	p.Admin = role == "admin"
	if acting != 0 && containsID(ids, acting) {
		p.ActingProfileID = acting
	}
	return p, nil
}

// fromDatabase checks the session in PostgreSQL and, when gen is known, caches the answer under
// it: a revocation committed meanwhile has written a newer generation, so the record is stale
// from birth rather than wrong.
func (a *Authenticator) fromDatabase(ctx context.Context, p Principal, acting int64, gen string) (Principal, error) {
	row, err := a.q.GetSessionForAuthCache(ctx, db.GetSessionForAuthCacheParams{ID: p.SessionID, UserID: p.UserID})
	if errors.Is(err, pgx.ErrNoRows) {
		a.cache(ctx, p, gen, endedMark)
		return Principal{}, fmt.Errorf("%w: session ended", ErrUnauthenticated)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("load session: %w", err)
	}
	var b strings.Builder
	b.WriteString(row.Role)
	b.WriteString(sep)
	for i, id := range row.ActingProfileIds {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	rec := b.String()
	a.cache(ctx, p, gen, rec)
	return fromRecord(p, rec, acting)
}

func (a *Authenticator) cache(ctx context.Context, p Principal, gen, rec string) {
	if gen == "" {
		return
	}
	ttl := min(recordTTL, time.Until(p.ExpiresAt)+10*time.Second)
	if ttl <= 0 {
		return
	}
	if err := a.rdb.Set(ctx, a.sessionKey(p.UserID, p.SessionID), gen+sep+rec, ttl).Err(); err != nil {
		a.log.WarnContext(ctx, "cache session check", "err", err)
	}
}

// ensureGeneration returns the user's generation, creating one when Redis has none.
func (a *Authenticator) ensureGeneration(ctx context.Context, userID int64) (string, error) {
	gen := rand.Text()
	ok, err := a.rdb.SetNX(ctx, a.generationKey(userID), gen, generationTTL).Result()
	if err != nil {
		return "", err
	}
	if ok {
		return gen, nil
	}
	return a.rdb.Get(ctx, a.generationKey(userID)).Result()
}

// UserChanged makes every cached session record of the user stale on every process.
func (a *Authenticator) UserChanged(ctx context.Context, userID int64) error {
	return ForgetUser(ctx, a.rdb, a.prefix, userID)
}

// ForgetUser writes a new generation for the user: what processes cached about the user's
// sessions (liveness, role, acting profiles) is checked in PostgreSQL again. Tools that change
// users outside the API (bcactl admin) call it too.
func ForgetUser(ctx context.Context, rdb redis.UniversalClient, prefix string, userID int64) error {
	if err := rdb.Set(ctx, UserKey(prefix, userID, "gen"), rand.Text(), generationTTL).Err(); err != nil {
		return fmt.Errorf("invalidate cached sessions of user %d: %w", userID, err)
	}
	return nil
}

// Revoking runs change, which ends sessions of the user or alters what their records hold, in
// PostgreSQL, between two generation writes. The first one makes sure Redis is writable before
// anything changes: if it is not, the change does not happen and the caller gets a 503, never a
// revocation that some process could miss. The second one (after the change is committed) makes
// records stale that a concurrent request filled from the old rows; if only that one fails, the
// records expire within recordTTL.
func (a *Authenticator) Revoking(ctx context.Context, userID int64, change func() error) error {
	if err := a.UserChanged(ctx, userID); err != nil {
		a.log.ErrorContext(ctx, "session cache unavailable; refusing the change", "user_id", userID, "err", err)
		e := domain.E(domain.KindUnavailable, "auth.cache_unavailable", "The session store is unavailable; try again shortly.")
		e.RetryAfter = 5 * time.Second
		return e
	}
	if err := change(); err != nil {
		return err
	}
	if err := a.UserChanged(ctx, userID); err != nil {
		a.log.ErrorContext(ctx, "invalidate session cache after the change", "user_id", userID, "err", err)
	}
	return nil
}

// Blacklist makes the access token unusable until it expires anyway.
func (a *Authenticator) Blacklist(ctx context.Context, userID int64, tokenID string, expiresAt time.Time) error {
	ttl := time.Until(expiresAt) + 10*time.Second // beyond the parser's leeway
	if ttl <= 0 {
		return nil
	}
	if err := a.rdb.Set(ctx, a.blacklistKey(userID, tokenID), 1, ttl).Err(); err != nil {
		return fmt.Errorf("blacklist token: %w", err)
	}
	return nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// containsID reports whether the comma-separated list holds id, without allocating.
func containsID(list string, id int64) bool {
	for list != "" {
		field, rest, _ := strings.Cut(list, ",")
		if n, err := strconv.ParseInt(field, 10, 64); err == nil && n == id {
			return true
		}
		list = rest
	}
	return false
}
