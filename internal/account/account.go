// Package account owns users and their sessions: sign-up, sign-in, refresh, sign-out, the email
// flows and account changes. Every rule of docs/product.md §3 lives here; the HTTP layer only converts.
package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/mail"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/postgres"
	"github.com/bca-app/backend/internal/profile"
	"github.com/bca-app/backend/internal/ratelimit"
	"github.com/bca-app/backend/internal/txn"
)

// Settings are the account rules that come from configuration.
type Settings struct {
	AccessTokenTTL       time.Duration
	RefreshTokenTTL      time.Duration
	EmailTokenTTL        time.Duration
	VerificationRequired bool
	MailEnabled          bool
	PublicBaseURL        string
	PerAddressPerMinute  int
	PerAccountPerMinute  int
}

// failureThreshold is the number of consecutive failed sign-ins that locks an account.
const failureThreshold = 5

// announceTimeout bounds announcing ended sessions after the commit, which goes on after the
// request was cancelled.
const announceTimeout = 5 * time.Second

// Service implements the account operations.
type Service struct {
	pool     *pgxpool.Pool
	q        *db.Queries
	hasher   *auth.Hasher
	signer   *auth.Signer
	authn    *auth.Authenticator
	limiter  *ratelimit.Limiter
	mailer   mail.Sender
	files    *files.Service
	settings Settings
	log      *slog.Logger
	out      txn.Runner
	// leaveChats ends a profile's chat participations inside the caller's transaction.
	leaveChats func(ctx context.Context, t *txn.Tx, profileID int64) error

	rdb       redis.UniversalClient
	keyPrefix string

	now func() time.Time

	// background holds mail sends that outlive their request, so shutdown can wait for them.
	background sync.WaitGroup
}

// Deps are the collaborators of the Service.
type Deps struct {
	Pool     *pgxpool.Pool
	Hasher   *auth.Hasher
	Signer   *auth.Signer
	Authn    *auth.Authenticator
	Limiter  *ratelimit.Limiter
	Mailer   mail.Sender
	Files    *files.Service
	Settings Settings
	Log      *slog.Logger
	Notifier outbox.Notifier
	// LeaveChats, when set, ends the chat participations of a deactivated user's profiles.
	LeaveChats func(ctx context.Context, t *txn.Tx, profileID int64) error
	// Now is the clock the service compares times with (the sign-in lock); nil is time.Now.
	// Tests move it instead of sleeping.
	Now func() time.Time
	// Redis, when set, carries the announcements of ended sessions (auth.SessionEnd) to every
	// API process, so their live streams end at once.
	Redis          redis.UniversalClient
	RedisKeyPrefix string
}

// New wires a Service; it refuses missing required dependencies (everything but Files, which
// only the account image needs, LeaveChats, Notifier, Now and Redis).
func New(d Deps) (*Service, error) {
	if err := domain.RequireDeps("account", map[string]any{
		"Pool": d.Pool, "Hasher": d.Hasher, "Signer": d.Signer, "Authn": d.Authn, "Limiter": d.Limiter,
		"Mailer": d.Mailer, "Log": d.Log,
	}); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{
		pool: d.Pool, q: db.New(d.Pool), hasher: d.Hasher, signer: d.Signer, authn: d.Authn,
		limiter: d.Limiter, mailer: d.Mailer, files: d.Files, settings: d.Settings, log: d.Log,
		out: txn.Runner{Pool: d.Pool, Notifier: d.Notifier}, leaveChats: d.LeaveChats,
		now: d.Now, rdb: d.Redis, keyPrefix: d.RedisKeyPrefix,
	}, nil
}

// sessionsEnded announces ended sessions to every API process (docs/product.md §3): their
// live streams end within moments. The session rows are already revoked, so a failure is
// logged, not answered.
func (s *Service) sessionsEnded(ctx context.Context, e auth.SessionEnd) {
	if s.rdb == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), announceTimeout)
	defer cancel()
	if err := auth.PublishSessionEnd(actx, s.rdb, s.keyPrefix, e); err != nil {
		s.log.WarnContext(ctx, "announce ended sessions", "user_id", e.UserID, "err", err)
	}
}

// Wait blocks until background mail sends have finished.
func (s *Service) Wait() { s.background.Wait() }

// Client describes where a request comes from.
type Client struct {
	Address     string
	UserAgent   string
	DeviceToken *string // FCM registration token (X-Client-Token)
}

// Session is what sign-up, sign-in and refresh hand out.
type Session struct {
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
	SessionID        int64
	User             db.User
}

var (
	errInvalidCredentials = domain.Unauthenticated("account.invalid_credentials", "The login or the password is wrong.")
	errWrongPassword      = domain.Forbidden("account.wrong_password", "The password is wrong.")
	errInvalidRefresh     = domain.Unauthenticated("account.invalid_refresh_token", "The refresh token is unknown, expired or revoked.")
)

// limit applies a per-minute rate limit. It never fails open: when Redis is unavailable the
// limiter counts in this process (logged).
func (s *Service) limit(ctx context.Context, key string, perMinute int) error {
	ok, retry, err := s.limiter.Allow(ctx, key, perMinute, time.Minute)
	if err != nil {
		s.log.WarnContext(ctx, "rate limiter unavailable; counting in process", "key", key, "err", err)
	}
	if !ok {
		return domain.RateLimited(retry)
	}
	return nil
}

func (s *Service) limitAddress(ctx context.Context, action string, c Client) error {
	return s.limit(ctx, action+":addr:"+c.Address, s.settings.PerAddressPerMinute)
}

func (s *Service) limitAccount(ctx context.Context, action, key string) error {
	return s.limit(ctx, action+":acct:"+key, s.settings.PerAccountPerMinute)
}

// newSession creates a session row and issues both tokens, inside the caller's transaction.
func (s *Service) newSession(ctx context.Context, q *db.Queries, user db.User, c Client) (Session, error) {
	secret, hash := auth.NewSecret()
	now := s.now()
	row, err := q.CreateSession(ctx, db.CreateSessionParams{
		UserID: user.ID, RefreshHash: hash, DeviceToken: c.DeviceToken, UserAgent: truncated(c.UserAgent, 512),
		ExpiresAt: now.Add(s.settings.RefreshTokenTTL),
	})
	if err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	return s.issue(user, row, secret, now)
}

func (s *Service) issue(user db.User, row db.Session, refreshSecret string, now time.Time) (Session, error) {
	access, claims, err := s.signer.Issue(user.ID, row.ID, now)
	if err != nil {
		return Session{}, err
	}
	return Session{
		AccessToken: access, AccessExpiresAt: claims.ExpiresAt,
		RefreshToken: refreshSecret, RefreshExpiresAt: row.ExpiresAt,
		SessionID: row.ID, User: user,
	}, nil
}

// SignUpInput is a new account.
type SignUpInput struct {
	LoginID, Nickname, Email, Password string
	Description                        *string
	Profile                            *profile.CreateInput
}

// SignUpResult carries the session, or nil when the email must be verified first.
type SignUpResult struct {
	User    db.User
	Session *Session
}

// SignUp creates an account (and its first profile) in one transaction.
func (s *Service) SignUp(ctx context.Context, in SignUpInput, c Client) (SignUpResult, error) {
	if err := s.limitAddress(ctx, "signup", c); err != nil {
		return SignUpResult{}, err
	}
	loginID, email := domain.CleanName(in.LoginID), domain.CleanName(in.Email)
	nickname, err := domain.Name("nickname", in.Nickname, 48)
	if err != nil {
		return SignUpResult{}, err
	}
	if problems := auth.PasswordProblems(in.Password, loginID, nickname, email); len(problems) > 0 {
		return SignUpResult{}, passwordError("password", problems)
	}
	keys := userKeys{login: ptr(domain.Key(loginID)), nickname: ptr(domain.Key(nickname)), email: ptr(domain.Key(email))}
	if err := s.checkTaken(ctx, s.q, keys, 0); err != nil {
		return SignUpResult{}, err
	}
	hash, err := s.hasher.Hash(in.Password)
	if err != nil {
		return SignUpResult{}, err
	}
	var verifiedAt *time.Time
	if !s.settings.MailEnabled {
		// Without mail nobody could ever verify; the address is taken as given.
		now := s.now()
		verifiedAt = &now
	}
	var res SignUpResult
	var verifyToken string
	err = txn.Do(ctx, s.pool, func(tx *txn.Tx) error {
		q := tx.Q
		user, err := q.CreateUser(ctx, db.CreateUserParams{
			LoginID: loginID, LoginKey: *keys.login, Nickname: nickname, NicknameKey: *keys.nickname,
			Email: email, EmailKey: *keys.email, PasswordHash: hash, Description: in.Description, EmailVerifiedAt: verifiedAt,
		})
		if err != nil {
			return s.uniqueError(ctx, err, keys, 0)
		}
		res.User = user
		if in.Profile != nil {
			if _, err := profile.Create(ctx, q, user.ID, *in.Profile); err != nil {
				return err
			}
		}
		if s.settings.MailEnabled {
			if verifyToken, err = s.newEmailToken(ctx, q, user, purposeVerify); err != nil {
				return err
			}
		}
		if s.settings.VerificationRequired {
			return nil
		}
		session, err := s.newSession(ctx, q, user, c)
		res.Session = &session
		return err
	})
	if err != nil {
		return SignUpResult{}, err
	}
	if verifyToken != "" {
		s.sendLater(ctx, verificationMail(s.settings.PublicBaseURL, res.User, verifyToken))
	}
	return res, nil
}

// userKeys are the normalised keys to check; nil means not asked about.
type userKeys struct{ login, nickname, email *string }

// checkTaken answers 409 naming every clashing field; the unique indexes remain the guarantee.
func (s *Service) checkTaken(ctx context.Context, q *db.Queries, k userKeys, exceptUserID int64) error {
	r, err := q.ListTakenUserKeys(ctx, db.ListTakenUserKeysParams{LoginKey: k.login, NicknameKey: k.nickname, EmailKey: k.email, ExceptUserID: exceptUserID})
	if err != nil {
		return fmt.Errorf("check taken keys: %w", err)
	}
	var fields []domain.FieldError
	if r.LoginTaken {
		fields = append(fields, domain.FieldError{Field: "id", Reason: "already taken"})
	}
	if r.NicknameTaken {
		fields = append(fields, domain.FieldError{Field: "nickname", Reason: "already taken"})
	}
	if r.EmailTaken {
		fields = append(fields, domain.FieldError{Field: "email", Reason: "already taken"})
	}
	if len(fields) > 0 {
		return domain.E(domain.KindConflict, "account.duplicate", "Some values are already taken.", fields...)
	}
	return nil
}

// uniqueError turns a unique violation (a concurrent sign-up won the race) into the same 409.
func (s *Service) uniqueError(ctx context.Context, err error, k userKeys, exceptUserID int64) error {
	if _, ok := postgres.IsUniqueViolation(err); ok {
		if e := s.checkTaken(ctx, s.q, k, exceptUserID); e != nil {
			return e
		}
		return domain.E(domain.KindConflict, "account.duplicate", "Some values are already taken.")
	}
	return fmt.Errorf("write user: %w", err)
}

func passwordError(field string, problems []string) error {
	fields := make([]domain.FieldError, len(problems))
	for i, p := range problems {
		fields[i] = domain.FieldError{Field: field, Reason: p}
	}
	return domain.E(domain.KindInvalid, "account.weak_password", "The password does not meet the rules.", fields...)
}

// Availability tells, for each given field, whether it is free.
type Availability struct{ ID, Nickname, Email *bool }

// CheckAvailability looks the given values up; rate-limited because it reveals existence.
func (s *Service) CheckAvailability(ctx context.Context, id, nickname, email *string, c Client) (Availability, error) {
	if err := s.limitAddress(ctx, "availability", c); err != nil {
		return Availability{}, err
	}
	key := func(p *string) *string {
		if p == nil {
			return nil
		}
		return ptr(domain.Key(*p))
	}
	taken, err := s.q.ListTakenUserKeys(ctx, db.ListTakenUserKeysParams{LoginKey: key(id), NicknameKey: key(nickname), EmailKey: key(email)})
	if err != nil {
		return Availability{}, fmt.Errorf("availability: %w", err)
	}
	free := func(p *string, taken bool) *bool {
		if p == nil {
			return nil
		}
		v := !taken
		return &v
	}
	return Availability{ID: free(id, taken.LoginTaken), Nickname: free(nickname, taken.NicknameTaken), Email: free(email, taken.EmailTaken)}, nil
}

// SignIn checks the password and opens a session. Unknown logins and wrong passwords get the
// same answer after the same work; account states are revealed only after a correct password.
func (s *Service) SignIn(ctx context.Context, login, password string, c Client) (Session, error) {
	if err := s.limitAddress(ctx, "signin", c); err != nil {
		return Session{}, err
	}
	cleaned := domain.CleanName(login)
	if len(cleaned) > 1 && cleaned[0] == '@' {
		cleaned = cleaned[1:]
	}
	key := domain.Key(cleaned)
	if err := s.limitAccount(ctx, "signin", key); err != nil {
		return Session{}, err
	}
	// A login with '@' is an email, anything else a login id, which cannot contain '@'
	// (docs/product.md §3): a login names at most one account.
	var user db.User
	var err error
	if strings.Contains(key, "@") {
		user, err = s.q.GetUserByEmailKey(ctx, key)
	} else {
		user, err = s.q.GetUserByLoginKey(ctx, key)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		if err := s.hasher.VerifyDummy(password); err != nil {
			return Session{}, err
		}
		return Session{}, errInvalidCredentials
	}
	if err != nil {
		return Session{}, fmt.Errorf("load user: %w", err)
	}
	ok, rehash, err := s.hasher.Verify(user.PasswordHash, password)
	if err != nil {
		return Session{}, err
	}
	// While the account is temporarily locked the answer is the same whether the password is
	// right or wrong (docs/product.md §3), so the lock cannot be used to test passwords. A
	// wrong one still counts (the back-off grows).
	if user.SigninLockedUntil != nil && user.SigninLockedUntil.After(s.now()) {
		if !ok {
			if _, err := s.q.RecordFailedSignIn(ctx, db.RecordFailedSignInParams{ID: user.ID, Threshold: failureThreshold}); err != nil {
				return Session{}, fmt.Errorf("record failed sign-in: %w", err)
			}
		}
		return Session{}, s.usable(db.User{SigninLockedUntil: user.SigninLockedUntil}, true)
	}
	if !ok {
		if _, err := s.q.RecordFailedSignIn(ctx, db.RecordFailedSignInParams{ID: user.ID, Threshold: failureThreshold}); err != nil {
			return Session{}, fmt.Errorf("record failed sign-in: %w", err)
		}
		return Session{}, errInvalidCredentials
	}
	if err := s.usable(user, true); err != nil {
		return Session{}, err
	}
	var session Session
	err = txn.Do(ctx, s.pool, func(tx *txn.Tx) error {
		q := tx.Q
		if err := q.ClearFailedSignIns(ctx, user.ID); err != nil {
			return fmt.Errorf("clear failed sign-ins: %w", err)
		}
		if rehash {
			if h, err := s.hasher.Hash(password); err == nil {
				if err := q.UpdateUserPasswordHash(ctx, db.UpdateUserPasswordHashParams{ID: user.ID, PasswordHash: h}); err != nil {
					return fmt.Errorf("rehash password: %w", err)
				}
			}
		}
		session, err = s.newSession(ctx, q, user, c)
		return err
	})
	return session, err
}

// usable reports why a user who proved the password may still not sign in.
func (s *Service) usable(user db.User, checkSignInLock bool) error {
	switch {
	case user.DeactivatedAt != nil:
		return domain.Forbidden("account.deactivated", "The account is deactivated.")
	case user.LockedAt != nil:
		return domain.Forbidden("account.locked", "The account is locked by an administrator.")
	case checkSignInLock && user.SigninLockedUntil != nil && user.SigninLockedUntil.After(s.now()):
		e := domain.Forbidden("account.temporarily_locked", "Too many failed sign-ins; the account is locked for a while.")
		e.RetryAfter = user.SigninLockedUntil.Sub(s.now())
		return e
	case s.settings.VerificationRequired && user.EmailVerifiedAt == nil:
		return domain.Forbidden("account.email_not_verified", "Follow the link mailed to you before signing in.")
	}
	return nil
}

// Refresh rotates the refresh secret. A secret that was already rotated away means it was
// copied: the whole session is revoked.
func (s *Service) Refresh(ctx context.Context, refreshToken string, c Client) (Session, error) {
	hash := auth.HashSecret(refreshToken)
	secret, newHash := auth.NewSecret()
	var session Session
	err := txn.Do(ctx, s.pool, func(tx *txn.Tx) error {
		q := tx.Q
		row, err := q.RotateRefreshToken(ctx, db.RotateRefreshTokenParams{
			NewHash: newHash, DeviceToken: c.DeviceToken, ExpiresAt: s.now().Add(s.settings.RefreshTokenTTL), OldHash: hash,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return errInvalidRefresh
		}
		if err != nil {
			return fmt.Errorf("rotate refresh token: %w", err)
		}
		if err := q.RetireRefreshToken(ctx, db.RetireRefreshTokenParams{RefreshHash: hash, SessionID: row.ID}); err != nil {
			return fmt.Errorf("retire refresh token: %w", err)
		}
		user, err := q.GetUserByID(ctx, row.UserID)
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		if err := s.usable(user, false); err != nil {
			return err
		}
		session, err = s.issue(user, row, secret, s.now())
		return err
	})
	if errors.Is(err, errInvalidRefresh) {
		return Session{}, s.handleReuse(ctx, hash)
	}
	return session, err
}

func (s *Service) handleReuse(ctx context.Context, hash []byte) error {
	sessionID, err := s.q.FindRetiredRefreshToken(ctx, hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return errInvalidRefresh
	}
	if err != nil {
		return fmt.Errorf("look up retired refresh token: %w", err)
	}
	userID, err := s.q.GetSessionUserID(ctx, sessionID)
	if err != nil {
		return fmt.Errorf("look up reused session: %w", err)
	}
	if err := s.authn.Revoking(ctx, userID, func() error {
		return s.q.RevokeSessionByID(ctx, db.RevokeSessionByIDParams{ID: sessionID, RevokeReason: ptr("refresh_token_reuse")})
	}); err != nil {
		return fmt.Errorf("revoke reused session: %w", err)
	}

	s.log.WarnContext(ctx, "refresh token reused; session revoked", "session_id", sessionID)
	return domain.Unauthenticated("account.refresh_token_reused", "This refresh token was already used; the session has been ended.")
}

// SignOut ends the caller's session and blacklists its access token.
func (s *Service) SignOut(ctx context.Context, p access.Caller) error {
	if err := s.authn.Revoking(ctx, p.UserID, func() error {
		_, err := s.q.RevokeSession(ctx, db.RevokeSessionParams{ID: p.SessionID, UserID: p.UserID, RevokeReason: ptr("sign_out")})
		return err
	}); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	s.sessionsEnded(ctx, auth.SessionEnd{UserID: p.UserID, SessionID: p.SessionID})
	return s.blacklist(ctx, p)
}

// SignOutEverywhere ends every session of the caller.
func (s *Service) SignOutEverywhere(ctx context.Context, p access.Caller) error {
	if err := s.authn.Revoking(ctx, p.UserID, func() error {
		_, err := s.q.RevokeUserSessions(ctx, db.RevokeUserSessionsParams{UserID: p.UserID, KeepSessionID: 0, Reason: ptr("sign_out_everywhere")})
		return err
	}); err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	s.sessionsEnded(ctx, auth.SessionEnd{UserID: p.UserID})
	return s.blacklist(ctx, p)
}

// blacklist stops the current access token at once; the session is already revoked (and its
// cached record made stale), so a Redis failure here is logged rather than failing sign-out.
func (s *Service) blacklist(ctx context.Context, p access.Caller) error {
	if err := s.authn.Blacklist(ctx, p.UserID, p.TokenID, p.ExpiresAt); err != nil {
		s.log.WarnContext(ctx, "blacklist token", "err", err)
	}
	return nil
}

// ListSessions pages through the caller's live sessions, newest first.
func (s *Service) ListSessions(ctx context.Context, p access.Caller, beforeID int64, limit int) ([]db.Session, error) {
	rows, err := s.q.ListLiveSessions(ctx, db.ListLiveSessionsParams{UserID: p.UserID, BeforeID: beforeID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return rows, nil
}

// RevokeSession ends one of the caller's sessions.
func (s *Service) RevokeSession(ctx context.Context, p access.Caller, sessionID int64) error {
	var n int64
	err := s.authn.Revoking(ctx, p.UserID, func() (err error) {
		n, err = s.q.RevokeSession(ctx, db.RevokeSessionParams{ID: sessionID, UserID: p.UserID, RevokeReason: ptr("revoked_by_user")})
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if n == 0 {
		return domain.NotFound("The session")
	}
	s.sessionsEnded(ctx, auth.SessionEnd{UserID: p.UserID, SessionID: sessionID})
	if sessionID == p.SessionID {
		return s.blacklist(ctx, p)
	}
	return nil
}

// Get returns the caller's account.
func (s *Service) Get(ctx context.Context, userID int64) (db.User, error) {
	u, err := s.q.GetUserByID(ctx, userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return db.User{}, domain.NotFound("The account")
	}
	if err != nil {
		return db.User{}, fmt.Errorf("load user: %w", err)
	}
	return u, nil
}

// UpdateInput is a partial change of the account; nil means unchanged.
type UpdateInput struct {
	Nickname       *string
	Description    *string
	SetDescription bool // distinguishes "clear the description" from "leave it"
	LoginID        *string
	Password       *string
}

// Update changes nickname, description or login id; an id change re-checks the password.
func (s *Service) Update(ctx context.Context, p access.Caller, in UpdateInput) (db.User, error) {
	user, err := s.Get(ctx, p.UserID)
	if err != nil {
		return db.User{}, err
	}
	params := db.UpdateUserProfileFieldsParams{ID: user.ID, SetDescription: in.SetDescription, Description: in.Description}
	var keys userKeys
	if in.Nickname != nil {
		nickname, err := domain.Name("nickname", *in.Nickname, 48)
		if err != nil {
			return db.User{}, err
		}
		keys.nickname = ptr(domain.Key(nickname))
		params.Nickname, params.NicknameKey = &nickname, keys.nickname
	}
	if in.LoginID != nil {
		if in.Password == nil {
			return db.User{}, domain.Invalid("password", "is required to change the id")
		}
		if err := s.limitAccount(ctx, "password", user.LoginKey); err != nil {
			return db.User{}, err
		}
		if err := s.checkPassword(user, *in.Password); err != nil {
			return db.User{}, err
		}
		loginID := domain.CleanName(*in.LoginID)
		keys.login = ptr(domain.Key(loginID))
		params.LoginID, params.LoginKey = &loginID, keys.login
	}
	if err := s.checkTaken(ctx, s.q, keys, user.ID); err != nil {
		return db.User{}, err
	}
	updated, err := s.q.UpdateUserProfileFields(ctx, params)
	if err != nil {
		return db.User{}, s.uniqueError(ctx, err, keys, user.ID)
	}
	s.authn.AccountChanged(ctx, user.ID)
	return updated, nil
}

func (s *Service) checkPassword(user db.User, password string) error {
	ok, _, err := s.hasher.Verify(user.PasswordHash, password)
	if err != nil {
		return err
	}
	if !ok {
		return errWrongPassword
	}
	return nil
}

// ChangePassword sets a new password and revokes every other session.
func (s *Service) ChangePassword(ctx context.Context, p access.Caller, current, next string) error {
	user, err := s.Get(ctx, p.UserID)
	if err != nil {
		return err
	}
	if err := s.limitAccount(ctx, "password", user.LoginKey); err != nil {
		return err
	}
	if err := s.checkPassword(user, current); err != nil {
		return err
	}
	if problems := auth.PasswordProblems(next, user.LoginID, user.Nickname, user.Email); len(problems) > 0 {
		return passwordError("new_password", problems)
	}
	hash, err := s.hasher.Hash(next)
	if err != nil {
		return err
	}
	return s.authn.Revoking(ctx, user.ID, func() error {
		return txn.Do(ctx, s.pool, func(t *txn.Tx) error {
			if err := t.Q.UpdateUserPasswordHash(ctx, db.UpdateUserPasswordHashParams{ID: user.ID, PasswordHash: hash}); err != nil {
				return fmt.Errorf("store password: %w", err)
			}
			t.AfterCommit(func(ctx context.Context) {
				s.sessionsEnded(ctx, auth.SessionEnd{UserID: user.ID, KeepSessionID: p.SessionID})
			})
			_, err := t.Q.RevokeUserSessions(ctx, db.RevokeUserSessionsParams{UserID: user.ID, KeepSessionID: p.SessionID, Reason: ptr("password_changed")})
			return err
		})
	})
}

// Deactivate closes the account after the password and confirmation: every session ends. The
// id, nickname and email stay reserved so nobody can take them over.
func (s *Service) Deactivate(ctx context.Context, p access.Caller, password string, reason *string) error {
	user, err := s.Get(ctx, p.UserID)
	if err != nil {
		return err
	}
	if err := s.limitAccount(ctx, "password", user.LoginKey); err != nil {
		return err
	}
	if err := s.checkPassword(user, password); err != nil {
		return err
	}
	err = s.authn.Revoking(ctx, user.ID, func() error { return s.deactivate(ctx, user, reason) })
	if err != nil {
		return err
	}
	return s.blacklist(ctx, p)
}

func (s *Service) deactivate(ctx context.Context, user db.User, reason *string) error {
	return s.out.Do(ctx, func(t *txn.Tx) error {
		if _, err := t.Q.DeactivateUser(ctx, db.DeactivateUserParams{ID: user.ID, DeactivationReason: reason}); err != nil {
			return fmt.Errorf("deactivate: %w", err)
		}
		if _, err := t.Q.RevokeUserSessions(ctx, db.RevokeUserSessionsParams{UserID: user.ID, KeepSessionID: 0, Reason: ptr("deactivated")}); err != nil {
			return fmt.Errorf("revoke sessions: %w", err)
		}
		t.AfterCommit(func(ctx context.Context) { s.sessionsEnded(ctx, auth.SessionEnd{UserID: user.ID}) })
		// The user's profiles vanish from everyone's files and leave their chat rooms.
		ids, err := t.Q.ListLiveProfileIDsOfUser(ctx, user.ID)
		if err != nil {
			return fmt.Errorf("list profiles: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		if s.leaveChats != nil {
			for _, id := range ids {
				if err := s.leaveChats(ctx, t, id); err != nil {
					return fmt.Errorf("leave chats of profile %d: %w", id, err)
				}
			}
		}
		return t.ProfilesChanged(ctx, ids...)
	})
}

// SetImage stores an uploaded image as the account image; the previous one is released after
// the change commits.
func (s *Service) SetImage(ctx context.Context, p access.Caller, fileID int64) (db.User, error) {
	var previous *int64
	err := txn.Do(ctx, s.pool, func(tx *txn.Tx) error {
		prev, err := tx.Q.SetUserImage(ctx, db.SetUserImageParams{ID: p.UserID, ImageFileID: optionalID(fileID)})
		previous = prev
		tx.AfterCommit(func(ctx context.Context) { s.authn.AccountChanged(ctx, p.UserID) })
		return err
	})
	if err != nil {
		return db.User{}, fmt.Errorf("set account image: %w", err)
	}
	if previous != nil && *previous != fileID {
		s.files.ReleaseAfterCommit(ctx, *previous)
	}
	return s.Get(ctx, p.UserID)
}

func optionalID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

func ptr[T any](v T) *T { return &v }

func truncated(s string, n int) *string {
	if s == "" {
		return nil
	}
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	out := string(r)
	return &out
}
