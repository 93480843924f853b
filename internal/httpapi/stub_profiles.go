package httpapi

import (
	"context"

	"github.com/bca-app/backend/gen/api"
)

// ListMyCards is not implemented yet.
func (s *Server) ListMyCards(context.Context, api.ListMyCardsRequestObject) (api.ListMyCardsResponseObject, error) {
	return nil, errNotImplemented
}

// CreateCard is not implemented yet.
func (s *Server) CreateCard(context.Context, api.CreateCardRequestObject) (api.CreateCardResponseObject, error) {
	return nil, errNotImplemented
}

// DeleteCard is not implemented yet.
func (s *Server) DeleteCard(context.Context, api.DeleteCardRequestObject) (api.DeleteCardResponseObject, error) {
	return nil, errNotImplemented
}

// GetCard is not implemented yet.
func (s *Server) GetCard(context.Context, api.GetCardRequestObject) (api.GetCardResponseObject, error) {
	return nil, errNotImplemented
}

// UpdateCard is not implemented yet.
func (s *Server) UpdateCard(context.Context, api.UpdateCardRequestObject) (api.UpdateCardResponseObject, error) {
	return nil, errNotImplemented
}

// UnsubscribeCard is not implemented yet.
func (s *Server) UnsubscribeCard(context.Context, api.UnsubscribeCardRequestObject) (api.UnsubscribeCardResponseObject, error) {
	return nil, errNotImplemented
}

// GetCardSubscription is not implemented yet.
func (s *Server) GetCardSubscription(context.Context, api.GetCardSubscriptionRequestObject) (api.GetCardSubscriptionResponseObject, error) {
	return nil, errNotImplemented
}

// SubscribeCard is not implemented yet.
func (s *Server) SubscribeCard(context.Context, api.SubscribeCardRequestObject) (api.SubscribeCardResponseObject, error) {
	return nil, errNotImplemented
}

// ListMyProfiles is not implemented yet.
func (s *Server) ListMyProfiles(context.Context, api.ListMyProfilesRequestObject) (api.ListMyProfilesResponseObject, error) {
	return nil, errNotImplemented
}

// CreateProfile is not implemented yet.
func (s *Server) CreateProfile(context.Context, api.CreateProfileRequestObject) (api.CreateProfileResponseObject, error) {
	return nil, errNotImplemented
}

// DeleteProfile is not implemented yet.
func (s *Server) DeleteProfile(context.Context, api.DeleteProfileRequestObject) (api.DeleteProfileResponseObject, error) {
	return nil, errNotImplemented
}

// GetProfile is not implemented yet.
func (s *Server) GetProfile(context.Context, api.GetProfileRequestObject) (api.GetProfileResponseObject, error) {
	return nil, errNotImplemented
}

// UpdateProfile is not implemented yet.
func (s *Server) UpdateProfile(context.Context, api.UpdateProfileRequestObject) (api.UpdateProfileResponseObject, error) {
	return nil, errNotImplemented
}

// ListProfileCards is not implemented yet.
func (s *Server) ListProfileCards(context.Context, api.ListProfileCardsRequestObject) (api.ListProfileCardsResponseObject, error) {
	return nil, errNotImplemented
}

// ListFollowRequests is not implemented yet.
func (s *Server) ListFollowRequests(context.Context, api.ListFollowRequestsRequestObject) (api.ListFollowRequestsResponseObject, error) {
	return nil, errNotImplemented
}

// RejectFollowRequest is not implemented yet.
func (s *Server) RejectFollowRequest(context.Context, api.RejectFollowRequestRequestObject) (api.RejectFollowRequestResponseObject, error) {
	return nil, errNotImplemented
}

// AcceptFollowRequest is not implemented yet.
func (s *Server) AcceptFollowRequest(context.Context, api.AcceptFollowRequestRequestObject) (api.AcceptFollowRequestResponseObject, error) {
	return nil, errNotImplemented
}

// ListFollowers is not implemented yet.
func (s *Server) ListFollowers(context.Context, api.ListFollowersRequestObject) (api.ListFollowersResponseObject, error) {
	return nil, errNotImplemented
}

// ListFollowing is not implemented yet.
func (s *Server) ListFollowing(context.Context, api.ListFollowingRequestObject) (api.ListFollowingResponseObject, error) {
	return nil, errNotImplemented
}

// DeleteProfileImage is not implemented yet.
func (s *Server) DeleteProfileImage(context.Context, api.DeleteProfileImageRequestObject) (api.DeleteProfileImageResponseObject, error) {
	return nil, errNotImplemented
}

// SetProfileImage is not implemented yet.
func (s *Server) SetProfileImage(context.Context, api.SetProfileImageRequestObject) (api.SetProfileImageResponseObject, error) {
	return nil, errNotImplemented
}

// DeleteRelation is not implemented yet.
func (s *Server) DeleteRelation(context.Context, api.DeleteRelationRequestObject) (api.DeleteRelationResponseObject, error) {
	return nil, errNotImplemented
}

// GetRelation is not implemented yet.
func (s *Server) GetRelation(context.Context, api.GetRelationRequestObject) (api.GetRelationResponseObject, error) {
	return nil, errNotImplemented
}

// SetRelation is not implemented yet.
func (s *Server) SetRelation(context.Context, api.SetRelationRequestObject) (api.SetRelationResponseObject, error) {
	return nil, errNotImplemented
}

// ExportProfileVCard is not implemented yet.
func (s *Server) ExportProfileVCard(context.Context, api.ExportProfileVCardRequestObject) (api.ExportProfileVCardResponseObject, error) {
	return nil, errNotImplemented
}
