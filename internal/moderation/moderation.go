// Package moderation is the admin side of docs/product.md §9: reports from users, locks of
// users, profiles and cards, session revocation, forced sync rebuilds, the admin's look-ups and
// the append-only audit log. Every admin action writes its audit entry in the transaction of
// the action; the HTTP admin API and the bcactl verbs both call this package, so a shell and a
// browser do exactly the same thing.
package moderation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/syncsvc"
	"github.com/bca-app/backend/internal/txn"
)

// Actor is who performs an admin action: an admin user through the API (UserID set) or an
// operator at a shell (UserID 0). Name is what the audit log shows ("user:12", "bcactl:alice");
// RequestID ties the entry to the request's log lines.
type Actor struct {
	UserID    int64
	Name      string
	RequestID string
}

// AdminActor is the actor of an API request made by admin userID.
func AdminActor(userID int64, requestID string) Actor {
	return Actor{UserID: userID, Name: "user:" + strconv.FormatInt(userID, 10), RequestID: requestID}
}

// Deps are what the service needs. Sync may be nil (operator commands without an object
// store): a rebuild is then only owed, and the worker does it.
type Deps struct {
	Pool      *pgxpool.Pool
	Notifier  outbox.Notifier
	Redis     redis.UniversalClient
	KeyPrefix string
	Sync      *syncsvc.Service
	Log       *slog.Logger
}

// Service runs moderation.
type Service struct {
	Deps
	out txn.Runner
}

// New returns a Service; it refuses missing required dependencies (Pool, Log). Without Redis
// (an operator command), API processes see a change when their cached sessions expire.
func New(d Deps) (*Service, error) {
	if err := domain.RequireDeps("moderation", map[string]any{"Pool": d.Pool, "Log": d.Log}); err != nil {
		return nil, err
	}
	if d.Notifier == nil {
		d.Notifier = outbox.Nop{}
	}
	return &Service{Deps: d, out: txn.Runner{Pool: d.Pool, Notifier: d.Notifier}}, nil
}

// Target kinds of locks and audit entries.
const (
	KindUser    = "user"
	KindProfile = "profile"
	KindCard    = "card"
	KindReport  = "report"
)

// audit appends one entry inside the action's transaction.
func audit(ctx context.Context, q *db.Queries, a Actor, action, kind string, targetID int64, reason string, details any) error {
	var raw json.RawMessage
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			return fmt.Errorf("audit details: %w", err)
		}
		raw = b
	}
	p := db.InsertAuditParams{ActorUserID: optionalID(a.UserID), Actor: a.Name, Action: action, TargetKind: kind, TargetID: targetID, Details: raw}
	if reason != "" {
		p.Reason = &reason
	}
	if a.RequestID != "" {
		p.RequestID = &a.RequestID
	}
	if _, err := q.InsertAudit(ctx, p); err != nil {
		return fmt.Errorf("write audit entry: %w", err)
	}
	return nil
}

// LockState is a row's lock after a lock or unlock.
type LockState struct {
	Kind     string
	ID       int64
	LockedAt *time.Time
	Changed  bool
}

// maxReason is the longest reason of an admin action, in bytes.
const maxReason = 500

func checkReason(reason string) error {
	if strings.TrimSpace(reason) == "" {
		return domain.Invalid("reason", "is required")
	}
	if len(reason) > maxReason {
		return domain.Invalid("reason", "must be at most 500 bytes")
	}
	return nil
}

// clipReason cuts a reason built from a report's note to maxReason bytes, at a character
// boundary; the whole note stays on the report and in its audit entry.
func clipReason(reason string) string {
	if len(reason) <= maxReason {
		return reason
	}
	cut, _ := domain.CutBytes(reason, maxReason-len("…"))
	return cut + "…"
}

// SetLock locks or unlocks a user, profile or card. A locked row vanishes for everyone else and
// from every sync file: the users whose files hold it are bumped in the same transaction
// (exactly the audience of the row). Locking a user also ends all its sessions; after commit
// its chat streams (or, for a profile, the streams acting as it) are closed on every replica.
// Asking for the state the row already has changes nothing and writes no audit entry.
func (s *Service) SetLock(ctx context.Context, a Actor, kind string, id int64, locked bool, reason string) (LockState, error) {
	if err := checkReason(reason); err != nil {
		return LockState{}, err
	}
	action := "unlock_" + kind
	if locked {
		action = "lock_" + kind
	}
	var st LockState
	var streamsUser, streamsProfile, owner int64
	write := func() error {
		return s.out.Do(ctx, func(t *txn.Tx) error {
			var err error
			st, streamsUser, streamsProfile, owner, err = s.setLockTx(ctx, t, a, kind, id, locked, reason, action)
			return err
		})
	}
	var err error
	if kind == KindUser {
		err = s.revoking(ctx, id, write)
	} else {
		err = write()
		if err == nil && owner != 0 {
			s.forgetSessions(ctx, owner) // the owner's cached records list its live profiles
		}
	}
	if err != nil {
		return LockState{}, err
	}
	s.endStreams(ctx, streamsUser, streamsProfile)
	return st, nil
}

// revoking runs change, which alters what a user's sessions may do (lock, role, revocation),
// between two invalidations of the user's cached session records (auth.ForgetUser): the first
// refuses the change with 503 when Redis cannot be written, so no API process keeps trusting an
// old record; the second, after commit, drops records filled from the old rows meanwhile.
func (s *Service) revoking(ctx context.Context, userID int64, change func() error) error {
	if s.Redis != nil {
		if err := auth.ForgetUser(ctx, s.Redis, s.KeyPrefix, userID); err != nil {
			e := domain.E(domain.KindUnavailable, "auth.cache_unavailable", "The session store is unavailable; try again shortly.")
			e.RetryAfter = 5 * time.Second
			return e
		}
	}
	if err := change(); err != nil {
		return err
	}
	s.forgetSessions(ctx, userID)
	return nil
}

// afterCommitTimeout bounds what the service does in Redis after a commit, which goes on after
// the caller was cancelled.
const afterCommitTimeout = 5 * time.Second

// forgetSessions drops the user's cached session records after a committed change; a failure
// is logged (the records expire on their own within minutes).
func (s *Service) forgetSessions(ctx context.Context, userID int64) {
	if s.Redis == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), afterCommitTimeout)
	defer cancel()
	if err := auth.ForgetUser(actx, s.Redis, s.KeyPrefix, userID); err != nil {
		s.Log.ErrorContext(ctx, "invalidate cached sessions", "user_id", userID, "err", err)
	}
}

// endStreams closes, after commit, the chat streams of a locked user or profile on every
// replica. A failure is logged: the session check refuses the user's next request anyway.
func (s *Service) endStreams(ctx context.Context, userID, profileID int64) {
	if (userID == 0 && profileID == 0) || s.Redis == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), afterCommitTimeout)
	defer cancel()
	if err := auth.PublishSessionEnd(actx, s.Redis, s.KeyPrefix, auth.SessionEnd{UserID: userID, ProfileID: profileID}); err != nil {
		s.Log.WarnContext(ctx, "end chat streams", "err", err, "user_id", userID, "profile_id", profileID)
	}
}

// setLockTx is the body of SetLock inside its transaction; it returns whose streams to end.
func (s *Service) setLockTx(ctx context.Context, t *outbox.Tx, a Actor, kind string, id int64, locked bool, reason, action string) (LockState, int64, int64, int64, error) {
	st := LockState{Kind: kind, ID: id}
	var streamsUser, streamsProfile int64
	switch kind {
	case KindUser:
		row, err := t.Q.LockUserRow(ctx, db.LockUserRowParams{TargetID: id, Locked: locked})
		if err != nil {
			return st, 0, 0, 0, notFound(err, "The user")
		}
		st.LockedAt, st.Changed = row.LockedAt, row.Changed
		if !row.Changed {
			return st, 0, 0, 0, nil
		}
		ids, err := t.Q.ProfileIDsOfUser(ctx, id)
		if err != nil {
			return st, 0, 0, 0, fmt.Errorf("profiles of user %d: %w", id, err)
		}
		if err := t.ProfilesChanged(ctx, ids...); err != nil {
			return st, 0, 0, 0, err
		}
		details := map[string]any{"profiles": ids}
		if locked {
			revoked, err := t.Q.RevokeUserSessions(ctx, db.RevokeUserSessionsParams{UserID: id, KeepSessionID: 0, Reason: ptr("locked_by_admin")})
			if err != nil {
				return st, 0, 0, 0, fmt.Errorf("revoke sessions: %w", err)
			}
			details["sessions_revoked"] = len(revoked)
			streamsUser = id
		}
		return st, streamsUser, 0, id, audit(ctx, t.Q, a, action, kind, id, reason, details)
	case KindProfile:
		row, err := t.Q.LockProfileRow(ctx, db.LockProfileRowParams{TargetID: id, Locked: locked})
		if err != nil {
			return st, 0, 0, 0, notFound(err, "The profile")
		}
		st.LockedAt, st.Changed = row.LockedAt, row.Changed
		if !row.Changed {
			return st, 0, 0, 0, nil
		}
		if err := t.ProfilesChanged(ctx, id); err != nil {
			return st, 0, 0, 0, err
		}
		if locked {
			streamsProfile = id
		}
		return st, 0, streamsProfile, row.UserID, audit(ctx, t.Q, a, action, kind, id, reason, map[string]any{"user_id": row.UserID})
	case KindCard:
		row, err := t.Q.LockCardRow(ctx, db.LockCardRowParams{TargetID: id, Locked: locked})
		if err != nil {
			return st, 0, 0, 0, notFound(err, "The card")
		}
		st.LockedAt, st.Changed = row.LockedAt, row.Changed
		if !row.Changed {
			return st, 0, 0, 0, nil
		}
		if err := t.CardsChanged(ctx, id); err != nil {
			return st, 0, 0, 0, err
		}
		return st, 0, 0, 0, audit(ctx, t.Q, a, action, kind, id, reason, map[string]any{"profile_id": row.ProfileID})
	}
	return st, 0, 0, 0, domain.Invalid("kind", "must be user, profile or card")
}

// RevokeSessions ends every live session of a user (the same revocation as signing out
// everywhere) and closes its chat streams.
func (s *Service) RevokeSessions(ctx context.Context, a Actor, userID int64, reason string) (int, error) {
	if err := checkReason(reason); err != nil {
		return 0, err
	}
	var n int
	err := s.revoking(ctx, userID, func() error {
		return s.out.Do(ctx, func(t *txn.Tx) error {
			if _, err := t.Q.GetUserByID(ctx, userID); err != nil {
				return notFound(err, "The user")
			}
			revoked, err := t.Q.RevokeUserSessions(ctx, db.RevokeUserSessionsParams{UserID: userID, KeepSessionID: 0, Reason: ptr("revoked_by_admin")})
			if err != nil {
				return fmt.Errorf("revoke sessions: %w", err)
			}
			n = len(revoked)
			return audit(ctx, t.Q, a, "revoke_sessions", KindUser, userID, reason, map[string]any{"sessions_revoked": n})
		})
	})
	if err != nil {
		return 0, err
	}
	s.endStreams(ctx, userID, 0)
	return n, nil
}

// Rebuild owes the user a new sync file (an outbox bump, written with the audit entry) and,
// when this process can build, rebuilds it from scratch at once. rebuilt reports the latter.
func (s *Service) Rebuild(ctx context.Context, a Actor, userID int64, reason string) (wanted int64, rebuilt bool, err error) {
	if err := checkReason(reason); err != nil {
		return 0, false, err
	}
	err = s.out.Do(ctx, func(t *txn.Tx) error {
		if _, err := t.Q.GetUserByID(ctx, userID); err != nil {
			return notFound(err, "The user")
		}
		bumps, err := outbox.MarkStale(ctx, t.Q, userID)
		if err != nil {
			return err
		}
		t.Add(bumps)
		for _, b := range bumps {
			wanted = b.Version
		}
		return audit(ctx, t.Q, a, "rebuild_sync", KindUser, userID, reason, nil)
	})
	if err != nil {
		return 0, false, err
	}
	if s.Sync != nil {
		if _, err := s.Sync.ForceRebuild(ctx, userID); err != nil {
			s.Log.WarnContext(ctx, "immediate rebuild failed; the worker will build the file", "err", err, "user_id", userID)
		} else {
			rebuilt = true
		}
	}
	return wanted, rebuilt, nil
}

// SetRole grants or revokes the admin role (bcactl admin grant/revoke), with its audit entry
// in the same transaction. The role is cached with the user's session records, so the change
// goes through revoking: it holds from the user's next request, and is refused with 503 while
// the session store cannot be written.
func (s *Service) SetRole(ctx context.Context, a Actor, loginID string, admin bool) (int64, error) {
	role := "user"
	if admin {
		role = "admin"
	}
	u, err := db.New(s.Pool).GetUserByLoginKey(ctx, domain.Key(loginID))
	if err != nil {
		return 0, notFound(err, "The account "+strconv.Quote(loginID))
	}
	err = s.revoking(ctx, u.ID, func() error {
		return s.out.Do(ctx, func(t *txn.Tx) error {
			row, err := t.Q.SetUserRoleByLogin(ctx, db.SetUserRoleByLoginParams{LoginKey: domain.Key(loginID), Role: role})
			if err != nil {
				return notFound(err, "The account "+strconv.Quote(loginID))
			}
			action := "revoke_admin"
			if admin {
				action = "grant_admin"
			}
			return audit(ctx, t.Q, a, action, KindUser, row.ID, "", map[string]any{"login_id": loginID, "previous_role": row.PreviousRole})
		})
	})
	if err != nil {
		return 0, err
	}
	return u.ID, nil
}

func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.NotFound(what)
	}
	return err
}

func ptr[T any](v T) *T { return &v }

func optionalID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}
