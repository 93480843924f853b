package moderation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/card"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/postgres"
	"github.com/bca-app/backend/internal/profile"
	"github.com/bca-app/backend/internal/ratelimit"
	"github.com/bca-app/backend/internal/txn"
)

// Reports need the read rules of profiles and cards (a reporter reports only what it can see)
// and the per-account limit.
type ReportDeps struct {
	Moderation *Service
	Profiles   *profile.Service
	Cards      *card.Service
	Limiter    *ratelimit.Limiter
	PerMinute  int
}

// Reporter is the service's report side.
type Reporter struct {
	*Service
	ReportDeps
}

// NewReporter returns the report side of d.Moderation; it refuses missing dependencies.
func NewReporter(d ReportDeps) (*Reporter, error) {
	if err := domain.RequireDeps("moderation reports", map[string]any{
		"Moderation": d.Moderation, "Profiles": d.Profiles, "Cards": d.Cards, "Limiter": d.Limiter,
	}); err != nil {
		return nil, err
	}
	return &Reporter{Service: d.Moderation, ReportDeps: d}, nil
}

// Report kinds.
const (
	ReportProfile     = "profile"
	ReportCard        = "card"
	ReportChatMessage = "chat_message"
)

// ReportInput is what the reporter says.
type ReportInput struct {
	Reason  string
	Details *string
}

// Evidence is the copy of a reported chat message, readable by admins only.
type Evidence struct {
	RoomID          int64     `json:"room_id"`
	EventIndex      int64     `json:"event_index"`
	EventType       string    `json:"event_type"`
	Message         string    `json:"message"`
	ImageFileID     *int64    `json:"image_file_id,omitempty"`
	AuthorProfileID int64     `json:"author_profile_id"`
	CreatedAt       time.Time `json:"created_at"`
}

func (r *Reporter) limit(ctx context.Context, userID int64) error {
	if r.Limiter == nil || r.PerMinute <= 0 {
		return nil
	}
	// Without Redis the limiter counts in this process: its decision holds either way.
	ok, retry, err := r.Limiter.Allow(ctx, "report:"+strconv.FormatInt(userID, 10), r.PerMinute, time.Minute)
	if err != nil {
		r.Log.WarnContext(ctx, "report rate limit counted in process", "err", err)
	}
	if !ok {
		return domain.RateLimited(retry)
	}
	return nil
}

var errOwnTarget = domain.E(domain.KindInvalid, "report.own_target", "You cannot report your own profiles, cards or messages.")

// ReportProfile reports a profile the acting profile can see (docs/product.md §9).
func (r *Reporter) ReportProfile(ctx context.Context, v access.Caller, profileID int64, in ReportInput) (db.Report, error) {
	if err := r.limit(ctx, v.UserID); err != nil {
		return db.Report{}, err
	}
	view, err := r.Profiles.Get(ctx, v, profileID)
	if err != nil {
		return db.Report{}, err
	}
	if view.Profile.UserID == v.UserID {
		return db.Report{}, errOwnTarget
	}
	return r.create(ctx, db.CreateReportParams{
		ReporterUserID: v.UserID, ReporterProfileID: v.ActingProfileID, Kind: ReportProfile,
		TargetKey: "profile:" + strconv.FormatInt(profileID, 10), TargetProfileID: profileID, TargetUserID: view.Profile.UserID,
		Reason: in.Reason, Details: in.Details,
	})
}

// ReportCard reports a card the acting profile can read.
func (r *Reporter) ReportCard(ctx context.Context, v access.Caller, cardID int64, in ReportInput) (db.Report, error) {
	if err := r.limit(ctx, v.UserID); err != nil {
		return db.Report{}, err
	}
	view, err := r.Cards.Get(ctx, v, cardID)
	if err != nil {
		return db.Report{}, err
	}
	owner, err := db.New(r.Pool).GetProfileOwner(ctx, view.Card.ProfileID)
	if err != nil {
		return db.Report{}, fmt.Errorf("owner of card %d: %w", cardID, err)
	}
	if owner == v.UserID {
		return db.Report{}, errOwnTarget
	}
	return r.create(ctx, db.CreateReportParams{
		ReporterUserID: v.UserID, ReporterProfileID: v.ActingProfileID, Kind: ReportCard,
		TargetKey: "card:" + strconv.FormatInt(cardID, 10), TargetProfileID: view.Card.ProfileID, TargetUserID: owner,
		TargetCardID: &cardID, Reason: in.Reason, Details: in.Details,
	})
}

// ReportChatMessage reports a message the acting profile can read, copying it as evidence.
func (r *Reporter) ReportChatMessage(ctx context.Context, v access.Caller, roomID, index int64, in ReportInput) (db.Report, error) {
	if err := r.limit(ctx, v.UserID); err != nil {
		return db.Report{}, err
	}
	m, err := db.New(r.Pool).GetReportableChatMessage(ctx, db.GetReportableChatMessageParams{RoomID: roomID, EventIndex: index, ReporterProfileID: v.ActingProfileID})
	if errors.Is(err, pgx.ErrNoRows) {
		return db.Report{}, domain.NotFound("The message")
	}
	if err != nil {
		return db.Report{}, fmt.Errorf("load message %d:%d: %w", roomID, index, err)
	}
	if m.AuthorUserID == v.UserID {
		return db.Report{}, errOwnTarget
	}
	ev, err := json.Marshal(Evidence{RoomID: m.RoomID, EventIndex: m.EventIndex, EventType: m.EventType, Message: m.Message,
		ImageFileID: m.ImageFileID, AuthorProfileID: m.AuthorProfileID, CreatedAt: m.CreatedAt.UTC()})
	if err != nil {
		return db.Report{}, err
	}
	return r.create(ctx, db.CreateReportParams{
		ReporterUserID: v.UserID, ReporterProfileID: v.ActingProfileID, Kind: ReportChatMessage,
		TargetKey:       "chat_message:" + strconv.FormatInt(roomID, 10) + ":" + strconv.FormatInt(index, 10),
		TargetProfileID: m.AuthorProfileID, TargetUserID: m.AuthorUserID, TargetRoomID: &roomID, TargetEventIndex: &index,
		Reason: in.Reason, Details: in.Details, Evidence: ev,
	})
}

func (r *Reporter) create(ctx context.Context, p db.CreateReportParams) (db.Report, error) {
	if p.Details != nil && *p.Details == "" {
		p.Details = nil
	}
	rep, err := db.New(r.Pool).CreateReport(ctx, p)
	// The reason list and the details' length are the table's CHECKs (migrations/00009); the
	// API's schema refuses bad values first, other callers get the same 400 from here.
	switch constraint, _ := postgres.IsCheckViolation(err); constraint {
	case "reports_reason_check":
		return db.Report{}, domain.Invalid("reason", "must be one of spam, harassment, inappropriate, impersonation, illegal, other")
	case "reports_details_check":
		return db.Report{}, domain.Invalid("details", "must be at most 1000 characters")
	}
	if err != nil {
		return db.Report{}, fmt.Errorf("create report: %w", err)
	}
	return rep, nil
}

// ListMine pages through the reports the user made, newest first.
func (r *Reporter) ListMine(ctx context.Context, userID, beforeID int64, limit int) ([]db.Report, error) {
	rows, err := db.New(r.Pool).ListReportsOfUser(ctx, db.ListReportsOfUserParams{UserID: userID, BeforeID: beforeID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	return rows, nil
}

// Resolution actions.
const (
	ActionDismiss    = "dismiss"
	ActionLockTarget = "lock_target"
	ActionLockUser   = "lock_user"
)

// Resolve closes an open report with an action and a note. lock_target locks the reported
// profile or card (a chat message's author profile); lock_user the account behind the target,
// like SetLock (refused with 503 while the session store cannot be written). The lock, the
// closing and the audit entries commit together.
func (s *Service) Resolve(ctx context.Context, a Actor, reportID int64, action string, note *string) (db.Report, error) {
	if action != ActionDismiss && action != ActionLockTarget && action != ActionLockUser {
		return db.Report{}, domain.Invalid("action", "must be dismiss, lock_target or lock_user")
	}
	// Built once, outside the transaction's function, which runs again on a retry.
	reason := "report #" + strconv.FormatInt(reportID, 10)
	if note != nil && *note != "" {
		reason = clipReason(reason + ": " + *note)
	}
	var out db.Report
	var endUser, endProfile, owner int64
	resolve := func() error {
		return s.out.Do(ctx, func(t *txn.Tx) error {
			rep, err := t.Q.GetReport(ctx, reportID)
			if err != nil {
				return notFound(err, "The report")
			}
			if rep.Status != "open" {
				return domain.E(domain.KindConflict, "report.closed", "The report is already closed.")
			}
			var lockErr error
			switch {
			case action == ActionLockUser:
				_, endUser, endProfile, owner, lockErr = s.setLockTx(ctx, t, a, KindUser, rep.TargetUserID, true, reason, "lock_user")
			case action == ActionLockTarget && rep.Kind == ReportCard && rep.TargetCardID != nil:
				_, endUser, endProfile, owner, lockErr = s.setLockTx(ctx, t, a, KindCard, *rep.TargetCardID, true, reason, "lock_card")
			case action == ActionLockTarget:
				_, endUser, endProfile, owner, lockErr = s.setLockTx(ctx, t, a, KindProfile, rep.TargetProfileID, true, reason, "lock_profile")
			}
			if lockErr != nil {
				return lockErr
			}
			out, err = t.Q.ResolveReport(ctx, db.ResolveReportParams{ID: reportID, Action: &action, Note: note, ResolvedBy: optionalID(a.UserID)})
			if errors.Is(err, pgx.ErrNoRows) {
				return domain.E(domain.KindConflict, "report.closed", "The report is already closed.")
			}
			if err != nil {
				return fmt.Errorf("resolve report: %w", err)
			}
			return audit(ctx, t.Q, a, "resolve_report", KindReport, reportID, "", map[string]any{"action": action, "note": note})
		})
	}
	var err error
	if action == ActionLockUser {
		// The account behind a report never changes: revoking needs it before the transaction.
		var rep db.Report
		if rep, err = db.New(s.Pool).GetReport(ctx, reportID); err != nil {
			return db.Report{}, notFound(err, "The report")
		}
		err = s.revoking(ctx, rep.TargetUserID, resolve)
	} else {
		err = resolve()
	}
	if err != nil {
		return db.Report{}, err
	}
	if owner != 0 {
		s.forgetSessions(ctx, owner) // lock: the user's cached session records are stale
	}
	if endUser != 0 || endProfile != 0 {
		s.endStreams(ctx, endUser, endProfile)
	}
	return out, nil
}
