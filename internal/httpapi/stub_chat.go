package httpapi

import (
	"context"

	"github.com/bca-app/backend/gen/api"
)

// ListChatRooms is not implemented yet.
func (s *Server) ListChatRooms(context.Context, api.ListChatRoomsRequestObject) (api.ListChatRoomsResponseObject, error) {
	return nil, errNotImplemented
}

// CreateChatRoom is not implemented yet.
func (s *Server) CreateChatRoom(context.Context, api.CreateChatRoomRequestObject) (api.CreateChatRoomResponseObject, error) {
	return nil, errNotImplemented
}

// StreamChatEvents is not implemented yet.
func (s *Server) StreamChatEvents(context.Context, api.StreamChatEventsRequestObject) (api.StreamChatEventsResponseObject, error) {
	return nil, errNotImplemented
}

// GetChatRoom is not implemented yet.
func (s *Server) GetChatRoom(context.Context, api.GetChatRoomRequestObject) (api.GetChatRoomResponseObject, error) {
	return nil, errNotImplemented
}

// UpdateChatRoom is not implemented yet.
func (s *Server) UpdateChatRoom(context.Context, api.UpdateChatRoomRequestObject) (api.UpdateChatRoomResponseObject, error) {
	return nil, errNotImplemented
}

// ListChatEvents is not implemented yet.
func (s *Server) ListChatEvents(context.Context, api.ListChatEventsRequestObject) (api.ListChatEventsResponseObject, error) {
	return nil, errNotImplemented
}

// PostChatMessage is not implemented yet.
func (s *Server) PostChatMessage(context.Context, api.PostChatMessageRequestObject) (api.PostChatMessageResponseObject, error) {
	return nil, errNotImplemented
}

// DeleteChatMessage is not implemented yet.
func (s *Server) DeleteChatMessage(context.Context, api.DeleteChatMessageRequestObject) (api.DeleteChatMessageResponseObject, error) {
	return nil, errNotImplemented
}

// PostChatImage is not implemented yet.
func (s *Server) PostChatImage(context.Context, api.PostChatImageRequestObject) (api.PostChatImageResponseObject, error) {
	return nil, errNotImplemented
}

// AddChatParticipants is not implemented yet.
func (s *Server) AddChatParticipants(context.Context, api.AddChatParticipantsRequestObject) (api.AddChatParticipantsResponseObject, error) {
	return nil, errNotImplemented
}

// RemoveChatParticipant is not implemented yet.
func (s *Server) RemoveChatParticipant(context.Context, api.RemoveChatParticipantRequestObject) (api.RemoveChatParticipantResponseObject, error) {
	return nil, errNotImplemented
}

// SetChatReadMarker is not implemented yet.
func (s *Server) SetChatReadMarker(context.Context, api.SetChatReadMarkerRequestObject) (api.SetChatReadMarkerResponseObject, error) {
	return nil, errNotImplemented
}
