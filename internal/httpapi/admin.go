package httpapi

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"time"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/moderation"
)

// The admin API (docs/product.md §9). The whole /api/v1/admin/ tree sits behind adminGate: a
// caller who is not an admin (anonymous, a bad token, a plain user) gets the same 404 as for a
// path that does not exist, before any validation, so the surface is not advertised. The role
// is read from PostgreSQL with the session on every request, so revoking it takes effect on
// the next request. Each handler checks the role again (admin) in case a route is ever wired
// differently.

// adminGate answers 404 unless the request carries an admin's live access token.
func (s *Server) adminGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearerToken(r)
		if !ok {
			notFound(w, r)
			return
		}
		p, err := s.Authn.Authenticate(r.Context(), raw, 0, 0)
		if err != nil {
			if !isAuthFailure(err) {
				writeError(w, r, s.Log, err)
				return
			}
			notFound(w, r)
			return
		}
		if !p.Admin {
			notFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// admin returns the acting admin, or the not-found of a non-admin.
func (s *Server) admin(ctx context.Context) (moderation.Actor, error) {
	p, ok := principal(ctx)
	if !ok || !p.Admin {
		return moderation.Actor{}, domain.E(domain.KindNotFound, "resource.not_found", "No such path.")
	}
	var requestID string
	if info := infoFrom(ctx); info != nil {
		requestID = info.ID
	}
	return moderation.AdminActor(p.UserID, requestID), nil
}

func adminReportOf(r db.Report) api.AdminReport {
	out := api.AdminReport{
		Id: r.ID, Kind: api.ReportKind(r.Kind), ReporterUserId: r.ReporterUserID, ReporterProfileId: r.ReporterProfileID,
		TargetProfileId: r.TargetProfileID, TargetUserId: r.TargetUserID, TargetCardId: r.TargetCardID, TargetRoomId: r.TargetRoomID,
		TargetEventIndex: r.TargetEventIndex, Reason: api.ReportReason(r.Reason), Details: r.Details, Status: api.AdminReportStatus(r.Status),
		ResolutionNote: r.ResolutionNote, ResolvedByUserId: r.ResolvedByUserID, ResolvedAt: utc(r.ResolvedAt), CreatedAt: r.CreatedAt.UTC(),
	}
	if r.ResolutionAction != nil {
		a := api.AdminReportResolutionAction(*r.ResolutionAction)
		out.ResolutionAction = &a
	}
	if len(r.Evidence) > 0 {
		var ev api.ChatMessageEvidence
		if json.Unmarshal(r.Evidence, &ev) == nil {
			out.Evidence = &ev
		}
	}
	return out
}

// ListReports pages through the moderation queue.
func (s *Server) ListReports(ctx context.Context, req api.ListReportsRequestObject) (api.ListReportsResponseObject, error) {
	if _, err := s.admin(ctx); err != nil {
		return nil, err
	}
	before, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	var f moderation.ReportFilter
	if req.Params.Status != nil {
		st := string(*req.Params.Status)
		f.Status = &st
	}
	if req.Params.Kind != nil {
		k := string(*req.Params.Kind)
		f.Kind = &k
	}
	limit := pageLimit(req.Params.Limit)
	rows, err := s.Moderation.ListReports(ctx, f, before, limit+1)
	if err != nil {
		return nil, err
	}
	out := api.ListReports200JSONResponse{Items: []api.AdminReport{}}
	rows, out.NextCursor, out.HasMore = page(rows, limit, func(r db.Report) int64 { return r.ID })
	for _, r := range rows {
		out.Items = append(out.Items, adminReportOf(r))
	}
	return out, nil
}

// GetReport reads one report with its evidence.
func (s *Server) GetReport(ctx context.Context, req api.GetReportRequestObject) (api.GetReportResponseObject, error) {
	if _, err := s.admin(ctx); err != nil {
		return nil, err
	}
	r, err := s.Moderation.GetReport(ctx, req.ReportId)
	if err != nil {
		return nil, err
	}
	return api.GetReport200JSONResponse(adminReportOf(r)), nil
}

// ResolveReport closes a report with an action and a note.
func (s *Server) ResolveReport(ctx context.Context, req api.ResolveReportRequestObject) (api.ResolveReportResponseObject, error) {
	a, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.Moderation.Resolve(ctx, a, req.ReportId, string(req.Body.Action), req.Body.Note)
	if err != nil {
		return nil, err
	}
	return api.ResolveReport200JSONResponse(adminReportOf(r)), nil
}

func adminUserOf(u db.User) api.AdminUser {
	return api.AdminUser{
		UserId: u.ID, Id: u.LoginID, Nickname: u.Nickname, Email: u.Email, Role: api.AdminUserRole(u.Role),
		EmailVerified: u.EmailVerifiedAt != nil, Locked: u.LockedAt != nil, LockedAt: utc(u.LockedAt),
		Deactivated: u.DeactivatedAt != nil, DeactivatedAt: utc(u.DeactivatedAt), CreatedAt: u.CreatedAt.UTC(),
	}
}

// SearchUsers finds users by a prefix of login id, nickname or email.
func (s *Server) SearchUsers(ctx context.Context, req api.SearchUsersRequestObject) (api.SearchUsersResponseObject, error) {
	if _, err := s.admin(ctx); err != nil {
		return nil, err
	}
	before, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := pageLimit(req.Params.Limit)
	rows, err := s.Moderation.SearchUsers(ctx, req.Params.Q, before, limit+1)
	if err != nil {
		return nil, err
	}
	out := api.SearchUsers200JSONResponse{Items: []api.AdminUser{}}
	rows, out.NextCursor, out.HasMore = page(rows, limit, func(u db.User) int64 { return u.ID })
	for _, u := range rows {
		out.Items = append(out.Items, adminUserOf(u))
	}
	return out, nil
}

// GetAdminUser reads one user.
func (s *Server) GetAdminUser(ctx context.Context, req api.GetAdminUserRequestObject) (api.GetAdminUserResponseObject, error) {
	if _, err := s.admin(ctx); err != nil {
		return nil, err
	}
	u, err := s.Moderation.GetUser(ctx, req.UserId)
	if err != nil {
		return nil, err
	}
	return api.GetAdminUser200JSONResponse(adminUserOf(u)), nil
}

// ListUserProfiles lists a user's profiles, locked and deleted ones included.
func (s *Server) ListUserProfiles(ctx context.Context, req api.ListUserProfilesRequestObject) (api.ListUserProfilesResponseObject, error) {
	if _, err := s.admin(ctx); err != nil {
		return nil, err
	}
	after, err := decodeAfter(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := pageLimit(req.Params.Limit)
	rows, err := s.Moderation.ListUserProfiles(ctx, req.UserId, after, limit+1)
	if err != nil {
		return nil, err
	}
	out := api.ListUserProfiles200JSONResponse{Items: []api.AdminProfile{}}
	rows, out.NextCursor, out.HasMore = page(rows, limit, func(p db.Profile) int64 { return p.ID })
	for _, p := range rows {
		out.Items = append(out.Items, api.AdminProfile{
			Id: p.ID, UserId: p.UserID, Name: p.Name, TeamName: p.TeamName, Description: p.Description, Private: p.Private,
			Version: p.Version, CreatedAt: p.CreatedAt.UTC(), ModifiedAt: p.ModifiedAt.UTC(),
			Deleted: p.DeletedAt != nil, DeletedAt: utc(p.DeletedAt), WhyDeleted: p.WhyDeleted,
			Locked: p.LockedAt != nil, LockedAt: utc(p.LockedAt),
		})
	}
	return out, nil
}

func (s *Server) setLock(ctx context.Context, kind string, id int64, locked bool, body *api.AdminActionRequest) (api.LockStateJSONResponse, error) {
	a, err := s.admin(ctx)
	if err != nil {
		return api.LockStateJSONResponse{}, err
	}
	st, err := s.Moderation.SetLock(ctx, a, kind, id, locked, body.Reason)
	if err != nil {
		return api.LockStateJSONResponse{}, err
	}
	return api.LockStateJSONResponse{Kind: api.LockStateKind(st.Kind), Id: st.ID, Locked: st.LockedAt != nil, LockedAt: utc(st.LockedAt), Changed: st.Changed}, nil
}

// LockUser locks an account.
func (s *Server) LockUser(ctx context.Context, req api.LockUserRequestObject) (api.LockUserResponseObject, error) {
	st, err := s.setLock(ctx, moderation.KindUser, req.UserId, true, req.Body)
	if err != nil {
		return nil, err
	}
	return api.LockUser200JSONResponse{LockStateJSONResponse: st}, nil
}

// UnlockUser unlocks an account.
func (s *Server) UnlockUser(ctx context.Context, req api.UnlockUserRequestObject) (api.UnlockUserResponseObject, error) {
	st, err := s.setLock(ctx, moderation.KindUser, req.UserId, false, req.Body)
	if err != nil {
		return nil, err
	}
	return api.UnlockUser200JSONResponse{LockStateJSONResponse: st}, nil
}

// LockProfile locks a profile.
func (s *Server) LockProfile(ctx context.Context, req api.LockProfileRequestObject) (api.LockProfileResponseObject, error) {
	st, err := s.setLock(ctx, moderation.KindProfile, req.ProfileId, true, req.Body)
	if err != nil {
		return nil, err
	}
	return api.LockProfile200JSONResponse{LockStateJSONResponse: st}, nil
}

// UnlockProfile unlocks a profile.
func (s *Server) UnlockProfile(ctx context.Context, req api.UnlockProfileRequestObject) (api.UnlockProfileResponseObject, error) {
	st, err := s.setLock(ctx, moderation.KindProfile, req.ProfileId, false, req.Body)
	if err != nil {
		return nil, err
	}
	return api.UnlockProfile200JSONResponse{LockStateJSONResponse: st}, nil
}

// LockCard locks a card.
func (s *Server) LockCard(ctx context.Context, req api.LockCardRequestObject) (api.LockCardResponseObject, error) {
	st, err := s.setLock(ctx, moderation.KindCard, req.CardId, true, req.Body)
	if err != nil {
		return nil, err
	}
	return api.LockCard200JSONResponse{LockStateJSONResponse: st}, nil
}

// UnlockCard unlocks a card.
func (s *Server) UnlockCard(ctx context.Context, req api.UnlockCardRequestObject) (api.UnlockCardResponseObject, error) {
	st, err := s.setLock(ctx, moderation.KindCard, req.CardId, false, req.Body)
	if err != nil {
		return nil, err
	}
	return api.UnlockCard200JSONResponse{LockStateJSONResponse: st}, nil
}

// RevokeUserSessions ends every session of a user.
func (s *Server) RevokeUserSessions(ctx context.Context, req api.RevokeUserSessionsRequestObject) (api.RevokeUserSessionsResponseObject, error) {
	a, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.Moderation.RevokeSessions(ctx, a, req.UserId, req.Body.Reason)
	if err != nil {
		return nil, err
	}
	return api.RevokeUserSessions200JSONResponse{UserId: req.UserId, Revoked: n}, nil
}

// RebuildUserSync owes the user a fresh sync file and tries to build it at once.
func (s *Server) RebuildUserSync(ctx context.Context, req api.RebuildUserSyncRequestObject) (api.RebuildUserSyncResponseObject, error) {
	a, err := s.admin(ctx)
	if err != nil {
		return nil, err
	}
	wanted, rebuilt, err := s.Moderation.Rebuild(ctx, a, req.UserId, req.Body.Reason)
	if err != nil {
		return nil, err
	}
	return api.RebuildUserSync202JSONResponse{UserId: req.UserId, WantedVersion: wanted, Rebuilt: rebuilt}, nil
}

// GetPipelineFigures reports the sync pipeline's backlog, lag and workers.
func (s *Server) GetPipelineFigures(ctx context.Context, req api.GetPipelineFiguresRequestObject) (api.GetPipelineFiguresResponseObject, error) {
	if _, err := s.admin(ctx); err != nil {
		return nil, err
	}
	minutes := 5
	if req.Params.Minutes != nil {
		minutes = *req.Params.Minutes
	}
	f, err := s.Moderation.PipelineFigures(ctx, time.Duration(minutes)*time.Minute)
	if err != nil {
		return nil, err
	}
	out := api.GetPipelineFigures200JSONResponse{
		OutboxDepth: f.OutboxDepth, QueueDepth: f.QueueDepth, OldestPendingSeconds: f.OldestPendingSeconds, DeadLettered: f.DeadLettered,
	}
	out.Lag.WindowMinutes, out.Lag.Samples = minutes, f.Lag.Samples
	if !math.IsNaN(f.Lag.P50) {
		out.Lag.P50Seconds, out.Lag.P99Seconds = &f.Lag.P50, &f.Lag.P99
	}
	out.Workers = make([]struct {
		AgeSeconds float64   `json:"age_seconds"`
		Id         string    `json:"id"`
		LastSeen   time.Time `json:"last_seen"`
	}, len(f.Workers))
	for i, w := range f.Workers {
		out.Workers[i].Id, out.Workers[i].LastSeen, out.Workers[i].AgeSeconds = w.ID, w.LastSeen.UTC(), time.Since(w.LastSeen).Seconds()
	}
	return out, nil
}

// ListAuditLog pages through the audit log.
func (s *Server) ListAuditLog(ctx context.Context, req api.ListAuditLogRequestObject) (api.ListAuditLogResponseObject, error) {
	if _, err := s.admin(ctx); err != nil {
		return nil, err
	}
	before, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	f := moderation.AuditFilter{ActorUserID: req.Params.ActorUserId, Action: req.Params.Action, TargetID: req.Params.TargetId}
	if req.Params.TargetKind != nil {
		k := string(*req.Params.TargetKind)
		f.TargetKind = &k
	}
	limit := pageLimit(req.Params.Limit)
	rows, err := s.Moderation.ListAudit(ctx, f, before, limit+1)
	if err != nil {
		return nil, err
	}
	out := api.ListAuditLog200JSONResponse{Items: []api.AuditEntry{}}
	rows, out.NextCursor, out.HasMore = page(rows, limit, func(e db.AuditLog) int64 { return e.ID })
	for _, e := range rows {
		item := api.AuditEntry{Id: e.ID, At: e.At.UTC(), ActorUserId: e.ActorUserID, Actor: e.Actor, Action: e.Action,
			TargetKind: api.AuditEntryTargetKind(e.TargetKind), TargetId: e.TargetID, Reason: e.Reason, RequestId: e.RequestID}
		if len(e.Details) > 0 {
			var d map[string]any
			if json.Unmarshal(e.Details, &d) == nil {
				item.Details = &d
			}
		}
		out.Items = append(out.Items, item)
	}
	return out, nil
}
