package httpapi

import (
	"context"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/moderation"
)

// Reports from users (docs/product.md §9): made as the acting profile, answered 202.

func myReportOf(r db.Report) api.MyReport {
	return api.MyReport{
		Id: r.ID, Kind: api.ReportKind(r.Kind), ReporterProfileId: r.ReporterProfileID, TargetProfileId: r.TargetProfileID,
		TargetCardId: r.TargetCardID, TargetRoomId: r.TargetRoomID, TargetEventIndex: r.TargetEventIndex,
		Reason: api.ReportReason(r.Reason), Details: r.Details, Status: api.MyReportStatus(r.Status),
		CreatedAt: r.CreatedAt.UTC(), ResolvedAt: utc(r.ResolvedAt),
	}
}

func reportInput(b *api.ReportRequest) moderation.ReportInput {
	return moderation.ReportInput{Reason: string(b.Reason), Details: b.Details}
}

// ReportProfile reports a profile.
func (s *Server) ReportProfile(ctx context.Context, req api.ReportProfileRequestObject) (api.ReportProfileResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	r, err := s.Reports.ReportProfile(ctx, v, req.ProfileId, reportInput(req.Body))
	if err != nil {
		return nil, err
	}
	return api.ReportProfile202JSONResponse(myReportOf(r)), nil
}

// ReportCard reports a card.
func (s *Server) ReportCard(ctx context.Context, req api.ReportCardRequestObject) (api.ReportCardResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	r, err := s.Reports.ReportCard(ctx, v, req.CardId, reportInput(req.Body))
	if err != nil {
		return nil, err
	}
	return api.ReportCard202JSONResponse(myReportOf(r)), nil
}

// ReportChatMessage reports a chat message, keeping a copy as evidence.
func (s *Server) ReportChatMessage(ctx context.Context, req api.ReportChatMessageRequestObject) (api.ReportChatMessageResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	r, err := s.Reports.ReportChatMessage(ctx, v, req.RoomId, req.EventIndex, reportInput(req.Body))
	if err != nil {
		return nil, err
	}
	return api.ReportChatMessage202JSONResponse(myReportOf(r)), nil
}

// ListMyReports pages through the caller's own reports.
func (s *Server) ListMyReports(ctx context.Context, req api.ListMyReportsRequestObject) (api.ListMyReportsResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	before, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := pageLimit(req.Params.Limit)
	rows, err := s.Reports.ListMine(ctx, p.UserID, before, limit+1)
	if err != nil {
		return nil, err
	}
	out := api.ListMyReports200JSONResponse{Items: []api.MyReport{}}
	rows, out.NextCursor, out.HasMore = page(rows, limit, func(r db.Report) int64 { return r.ID })
	for _, r := range rows {
		out.Items = append(out.Items, myReportOf(r))
	}
	return out, nil
}
