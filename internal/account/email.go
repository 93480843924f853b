package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/mail"
	"github.com/bca-app/backend/internal/txn"
)

// Purposes bind an email token to one use: a verification link cannot reset a password.
const (
	purposeVerify = "verify_email"
	purposeReset  = "reset_password"
)

var errBadEmailToken = domain.NotFound("The link")

// newEmailToken replaces the user's outstanding tokens of the purpose with a new one.
func (s *Service) newEmailToken(ctx context.Context, q *db.Queries, user db.User, purpose string) (string, error) {
	if err := q.InvalidateEmailTokens(ctx, db.InvalidateEmailTokensParams{UserID: user.ID, Purpose: purpose}); err != nil {
		return "", fmt.Errorf("invalidate email tokens: %w", err)
	}
	secret, hash := auth.NewSecret()
	_, err := q.CreateEmailToken(ctx, db.CreateEmailTokenParams{
		UserID: user.ID, Purpose: purpose, TokenHash: hash, Email: user.Email, ExpiresAt: s.now().Add(s.settings.EmailTokenTTL),
	})
	if err != nil {
		return "", fmt.Errorf("create email token: %w", err)
	}
	return secret, nil
}

// sendLater sends the mail outside the request, so the answer's timing does not reveal whether
// an address has an account; shutdown waits for it (Wait).
func (s *Service) sendLater(ctx context.Context, m mail.Message) {
	ctx = context.WithoutCancel(ctx)
	s.background.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := s.mailer.Send(ctx, m); err != nil {
			s.log.ErrorContext(ctx, "send mail", "subject", m.Subject, "err", err)
		}
	})
}

func verificationMail(base string, u db.User, token string) mail.Message {
	return mail.Message{
		To:      u.Email,
		Subject: "Verify your B.Ca email address",
		Text: fmt.Sprintf("Hello %s,\n\nopen this link to verify your email address:\n%s/api/v1/account/email-verification/%s\n\n"+
			"If you did not sign up for B.Ca, ignore this mail.\n", u.Nickname, base, token),
	}
}

func resetMail(base string, u db.User, token string) mail.Message {
	return mail.Message{
		To:      u.Email,
		Subject: "Reset your B.Ca password",
		Text: fmt.Sprintf("Hello %s,\n\nsomeone asked to reset your B.Ca password. In the app, use this reset code:\n%s\n"+
			"(API: POST %s/api/v1/account/password-reset/%s)\n\nIf it was not you, ignore this mail; your password stays as it is.\n",
			u.Nickname, token, base, token),
	}
}

// VerifyEmail consumes a verification link.
func (s *Service) VerifyEmail(ctx context.Context, token string) (db.User, error) {
	var user db.User
	err := txn.Do(ctx, s.pool, func(tx *txn.Tx) error {
		q := tx.Q
		t, err := q.ConsumeEmailToken(ctx, db.ConsumeEmailTokenParams{TokenHash: auth.HashSecret(token), Purpose: purposeVerify})
		if errors.Is(err, pgx.ErrNoRows) {
			return errBadEmailToken
		}
		if err != nil {
			return fmt.Errorf("consume token: %w", err)
		}
		user, err = q.MarkEmailVerified(ctx, db.MarkEmailVerifiedParams{ID: t.UserID, EmailKey: domain.Key(t.Email)})
		if errors.Is(err, pgx.ErrNoRows) {
			return errBadEmailToken // the address changed since the link was sent
		}
		tx.AfterCommit(func(ctx context.Context) { s.authn.AccountChanged(ctx, t.UserID) })
		return err
	})
	return user, err
}

// ResendVerification mails a new verification link: to the signed-in user, or to the account
// of the given email (answering the same whether it exists or not).
func (s *Service) ResendVerification(ctx context.Context, p *access.Caller, email *string, c Client) error {
	if err := s.limitAddress(ctx, "mail", c); err != nil {
		return err
	}
	if !s.settings.MailEnabled {
		return nil
	}
	var user db.User
	var err error
	switch {
	case p != nil:
		user, err = s.Get(ctx, p.UserID)
	case email != nil:
		user, err = s.q.GetUserByEmailKey(ctx, domain.Key(*email))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
	default:
		return domain.Invalid("email", "is required when not signed in")
	}
	if err != nil {
		return err
	}
	if err := s.limitAccount(ctx, "mail", user.LoginKey); err != nil {
		if p == nil {
			return nil // anonymous callers learn nothing, not even that a limit applies
		}
		return err
	}
	if user.EmailVerifiedAt != nil || user.DeactivatedAt != nil {
		return nil
	}
	token, err := s.newEmailToken(ctx, s.q, user, purposeVerify)
	if err != nil {
		return err
	}
	s.sendLater(ctx, verificationMail(s.settings.PublicBaseURL, user, token))
	return nil
}

// RequestPasswordReset mails a reset link when the address has a usable account. The answer is
// the same either way.
func (s *Service) RequestPasswordReset(ctx context.Context, email string, c Client) error {
	if err := s.limitAddress(ctx, "mail", c); err != nil {
		return err
	}
	user, err := s.q.GetUserByEmailKey(ctx, domain.Key(email))
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (user.DeactivatedAt != nil || user.LockedAt != nil)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load user: %w", err)
	}
	if !s.settings.MailEnabled {
		return nil
	}
	if err := s.limitAccount(ctx, "mail", user.LoginKey); err != nil {
		return nil
	}
	token, err := s.newEmailToken(ctx, s.q, user, purposeReset)
	if err != nil {
		return err
	}
	s.sendLater(ctx, resetMail(s.settings.PublicBaseURL, user, token))
	return nil
}

// ResetPassword sets a new password with a reset token. The token is consumed only when the new
// password is acceptable; every session ends, the sign-in lock clears, and the mailbox is
// proven, so the email counts as verified.
func (s *Service) ResetPassword(ctx context.Context, token, newPassword string, c Client) error {
	if err := s.limitAddress(ctx, "reset", c); err != nil {
		return err
	}
	var resetUser int64
	err := txn.Do(ctx, s.pool, func(tx *txn.Tx) error {
		q := tx.Q
		t, err := q.ConsumeEmailToken(ctx, db.ConsumeEmailTokenParams{TokenHash: auth.HashSecret(token), Purpose: purposeReset})
		if errors.Is(err, pgx.ErrNoRows) {
			return errBadEmailToken
		}
		if err != nil {
			return fmt.Errorf("consume token: %w", err)
		}
		user, err := q.GetUserByID(ctx, t.UserID)
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		if problems := auth.PasswordProblems(newPassword, user.LoginID, user.Nickname, user.Email); len(problems) > 0 {
			return passwordError("new_password", problems) // rolls back: the link still works
		}
		hash, err := s.hasher.Hash(newPassword)
		if err != nil {
			return err
		}
		if err := q.ResetUserPassword(ctx, db.ResetUserPasswordParams{ID: user.ID, PasswordHash: hash}); err != nil {
			return fmt.Errorf("store password: %w", err)
		}
		if _, err := q.MarkEmailVerified(ctx, db.MarkEmailVerifiedParams{ID: user.ID, EmailKey: domain.Key(t.Email)}); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("mark verified: %w", err)
		}
		tx.AfterCommit(func(ctx context.Context) { s.sessionsEnded(ctx, auth.SessionEnd{UserID: user.ID}) })
		if _, err = q.RevokeUserSessions(ctx, db.RevokeUserSessionsParams{UserID: user.ID, KeepSessionID: 0, Reason: ptr("password_reset")}); err != nil {
			return err
		}
		// Cached session records go stale before the commit (a failure rolls back) and again
		// after it (see auth.Authenticator.Revoking).
		if err := s.authn.UserChanged(ctx, user.ID); err != nil {
			return domain.E(domain.KindUnavailable, "auth.cache_unavailable", "The session store is unavailable; try again shortly.")
		}
		resetUser = user.ID
		return nil
	})
	if err == nil && resetUser != 0 {
		if err := s.authn.UserChanged(ctx, resetUser); err != nil {
			s.log.ErrorContext(ctx, "invalidate session cache after a password reset", "user_id", resetUser, "err", err)
		}
	}
	return err
}
