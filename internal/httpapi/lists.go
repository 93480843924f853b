package httpapi

import (
	"context"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/profile"
)

// ListMySubscriptions lists the cards the acting profile saved.
func (s *Server) ListMySubscriptions(ctx context.Context, req api.ListMySubscriptionsRequestObject) (api.ListMySubscriptionsResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	after, err := decodeAfter(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := pageLimit(req.Params.Limit)
	rows, err := s.Cards.ListSubscriptions(ctx, v.ActingProfileID, after, limit+1)
	if err != nil {
		return nil, err
	}
	out := api.ListMySubscriptions200JSONResponse{Items: []api.CardSubscription{}}
	rows, out.NextCursor, out.HasMore = page(rows, limit, func(r db.CardSubscription) int64 { return r.ID })
	for _, r := range rows {
		at := r.CreatedAt.UTC()
		out.Items = append(out.Items, api.CardSubscription{CardId: r.CardID, ProfileId: r.ProfileID, Subscribed: true, CreatedAt: &at})
	}
	return out, nil
}

// ListOutgoingFollowRequests lists the follow requests the caller's profile is waiting on.
func (s *Server) ListOutgoingFollowRequests(ctx context.Context, req api.ListOutgoingFollowRequestsRequestObject) (api.ListOutgoingFollowRequestsResponseObject, error) {
	rows, next, err := s.outgoing(ctx, req.ProfileId, access.FollowRequested, req.Params.Cursor, req.Params.Limit)
	if err != nil {
		return nil, err
	}
	out := api.ListOutgoingFollowRequests200JSONResponse{Items: []api.FollowRequest{}, NextCursor: next, HasMore: next != nil}
	for _, r := range rows {
		out.Items = append(out.Items, api.FollowRequest{Profile: profileOf(r.View), RequestedAt: r.RelatedAt.UTC()})
	}
	return out, nil
}

// ListBlockedProfiles lists the profiles the caller's profile blocks.
func (s *Server) ListBlockedProfiles(ctx context.Context, req api.ListBlockedProfilesRequestObject) (api.ListBlockedProfilesResponseObject, error) {
	rows, next, err := s.outgoing(ctx, req.ProfileId, access.Block, req.Params.Cursor, req.Params.Limit)
	if err != nil {
		return nil, err
	}
	out := api.ListBlockedProfiles200JSONResponse{Items: []api.Profile{}, NextCursor: next, HasMore: next != nil}
	for _, r := range rows {
		out.Items = append(out.Items, profileOf(r.View))
	}
	return out, nil
}

func (s *Server) outgoing(ctx context.Context, profileID int64, status access.Status, cursor *string, l *int) ([]profile.Listed, *string, error) {
	v, err := s.viewer(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	after, err := decodeAfter(cursor)
	if err != nil {
		return nil, nil, err
	}
	limit := pageLimit(l)
	rows, err := s.Profiles.ListOutgoing(ctx, v, profileID, status, after, limit+1)
	if err != nil {
		return nil, nil, err
	}
	rows, next, _ := page(rows, limit, func(r profile.Listed) int64 { return r.Profile.ID })
	return rows, next, nil
}
