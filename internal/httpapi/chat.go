package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/chat"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/files"
)

// chatActor is the caller acting as its profile profileID, from its current session.
func (s *Server) chatActor(ctx context.Context, profileID int64) (access.Caller, error) {
	return s.actingViewer(ctx, profileID)
}

func chatRoomOf(r chat.Room) api.ChatRoom {
	parts := make([]api.ChatParticipant, len(r.Participants))
	for i, p := range r.Participants {
		owner := p.LeftAt == nil && p.ProfileID == r.OwnerProfileID
		parts[i] = api.ChatParticipant{
			ProfileId: p.ProfileID, Name: p.Name, JoinedAt: p.JoinedAt.UTC(), LeftAt: utc(p.LeftAt),
			Active: p.LeftAt == nil, IsOwner: &owner,
		}
		if p.ImageFileKey != nil {
			url := files.URL(*p.ImageFileKey)
			parts[i].ImageUrl = &url
		}
	}
	closed := r.ClosedAt != nil
	return api.ChatRoom{
		Id: r.ID, Name: r.Name, Description: r.Description, OwnerProfileId: r.OwnerProfileID, Private: r.Private,
		Closed: &closed, Participants: parts, CreatedAt: r.CreatedAt.UTC(), ModifiedAt: r.ModifiedAt.UTC(),
		Version: r.Version, LastEventIndex: r.LastEventIndex, ReadEventIndex: r.ReadEventIndex, UnreadCount: r.Unread(),
	}
}

func chatEventOf(e chat.Event) api.ChatEvent {
	out := api.ChatEvent{
		RoomId: e.RoomID, EventIndex: e.Index, EventType: api.ChatEventType(e.Type), Message: e.Message,
		CausedByProfileId: e.CausedByProfileID, TargetProfileId: e.TargetProfileID, TargetEventIndex: e.TargetEventIndex,
		CreatedAt: e.CreatedAt.UTC(),
	}
	if e.ImageFileKey != nil {
		url := files.URL(*e.ImageFileKey)
		out.ImageUrl = &url
	}
	if e.Deleted {
		out.Deleted = &e.Deleted
	}
	return out
}

func failedInvitationsOf(f []chat.FailedInvitation) []api.FailedInvitation {
	out := make([]api.FailedInvitation, len(f))
	for i, x := range f {
		out[i] = api.FailedInvitation{ProfileId: x.ProfileID, Code: x.Code, Reason: x.Reason}
	}
	return out
}

// Room list cursors are opaque to clients: the activity time and id of the last room seen.
func encodeRoomCursor(p chat.RoomPage) *string {
	b := binary.BigEndian.AppendUint64(nil, uint64(p.At.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, uint64(p.ID))
	c := base64.RawURLEncoding.EncodeToString(b)
	return &c
}

func decodeRoomCursor(c *string) (chat.RoomPage, error) {
	if c == nil || *c == "" {
		return chat.RoomPage{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*c)
	if err != nil || len(b) != 16 {
		return chat.RoomPage{}, domain.Invalid("cursor", "is not a cursor this server issued")
	}
	id := int64(binary.BigEndian.Uint64(b[8:]))
	if id <= 0 {
		return chat.RoomPage{}, domain.Invalid("cursor", "is not a cursor this server issued")
	}
	return chat.RoomPage{At: time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC(), ID: id}, nil
}

// ListChatRooms lists the acting profile's rooms, most recently active first.
func (s *Server) ListChatRooms(ctx context.Context, req api.ListChatRoomsRequestObject) (api.ListChatRoomsResponseObject, error) {
	a, err := s.chatActor(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	after, err := decodeRoomCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	rooms, next, err := s.Chat.ListRooms(ctx, a, after, pageLimit(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := api.ListChatRooms200JSONResponse{Items: make([]api.ChatRoom, len(rooms))}
	for i, r := range rooms {
		out.Items[i] = chatRoomOf(r)
	}
	if next != nil {
		out.NextCursor, out.HasMore = encodeRoomCursor(*next), true
	}
	return out, nil
}

// CreateChatRoom creates a room; an existing 1:1 room is answered 409 with the room.
func (s *Server) CreateChatRoom(ctx context.Context, req api.CreateChatRoomRequestObject) (api.CreateChatRoomResponseObject, error) {
	a, err := s.chatActor(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	b := req.Body
	room, failed, err := s.Chat.CreateRoom(ctx, a, chat.CreateInput{
		InviteProfileIDs: b.InviteProfileIds, Name: b.Name, Description: b.Description, Private: b.Private,
	})
	var exists *chat.ExistingRoomError
	if errors.As(err, &exists) {
		_, p, _ := problemFor(exists.Err)
		if info := infoFrom(ctx); info != nil {
			p.RequestId, info.Err = &info.ID, err
		}
		return api.CreateChatRoom409ApplicationProblemPlusJSONResponse{
			Type: p.Type, Title: p.Title, Status: p.Status, Code: p.Code, Detail: p.Detail, RequestId: p.RequestId,
			Room: chatRoomOf(exists.Room),
		}, nil
	}
	if err != nil {
		return nil, err
	}
	etag := room.ETag()
	return api.CreateChatRoom201JSONResponse{
		Body:    api.ChatRoomCreated{Room: chatRoomOf(room), FailedInvitations: failedInvitationsOf(failed)},
		Headers: api.CreateChatRoom201ResponseHeaders{ETag: &etag},
	}, nil
}

// GetChatRoom reads a room.
func (s *Server) GetChatRoom(ctx context.Context, req api.GetChatRoomRequestObject) (api.GetChatRoomResponseObject, error) {
	a, err := s.chatActor(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	room, err := s.Chat.GetRoom(ctx, a, req.RoomId)
	if err != nil {
		return nil, err
	}
	etag := room.ETag()
	return api.GetChatRoom200JSONResponse{Body: chatRoomOf(room), Headers: api.GetChatRoom200ResponseHeaders{ETag: &etag}}, nil
}

// UpdateChatRoom changes a room's settings.
func (s *Server) UpdateChatRoom(ctx context.Context, req api.UpdateChatRoomRequestObject) (api.UpdateChatRoomResponseObject, error) {
	a, err := s.chatActor(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	b := req.Body
	room, err := s.Chat.UpdateRoom(ctx, a, req.RoomId, req.Params.IfMatch, chat.UpdateInput{
		Name: b.Name, Description: b.Description, Private: b.Private, OwnerProfileID: b.OwnerProfileId,
	})
	if err != nil {
		return nil, err
	}
	etag := room.ETag()
	return api.UpdateChatRoom200JSONResponse{Body: chatRoomOf(room), Headers: api.UpdateChatRoom200ResponseHeaders{ETag: &etag}}, nil
}

// AddChatParticipants invites profiles, or enters a public room.
func (s *Server) AddChatParticipants(ctx context.Context, req api.AddChatParticipantsRequestObject) (api.AddChatParticipantsResponseObject, error) {
	a, err := s.chatActor(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	room, failed, err := s.Chat.AddParticipants(ctx, a, req.RoomId, req.Body.ProfileIds)
	if err != nil {
		return nil, err
	}
	return api.AddChatParticipants200JSONResponse{Room: chatRoomOf(room), FailedInvitations: failedInvitationsOf(failed)}, nil
}

// RemoveChatParticipant leaves a room or kicks a participant.
func (s *Server) RemoveChatParticipant(ctx context.Context, req api.RemoveChatParticipantRequestObject) (api.RemoveChatParticipantResponseObject, error) {
	a, err := s.chatActor(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	if err := s.Chat.RemoveParticipant(ctx, a, req.RoomId, req.ProfileId); err != nil {
		return nil, err
	}
	return api.RemoveChatParticipant204Response{}, nil
}

// ListChatEvents pages through a room's events.
func (s *Server) ListChatEvents(ctx context.Context, req api.ListChatEventsRequestObject) (api.ListChatEventsResponseObject, error) {
	a, err := s.chatActor(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	limit := 50
	if req.Params.Limit != nil {
		limit = *req.Params.Limit
	}
	events, more, err := s.Chat.ListEvents(ctx, a, req.RoomId, chat.EventPage{After: req.Params.After, Before: req.Params.Before, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := api.ListChatEvents200JSONResponse{Items: make([]api.ChatEvent, len(events)), HasMore: more}
	for i, e := range events {
		out.Items[i] = chatEventOf(e)
	}
	return out, nil
}

// PostChatMessage posts a text message.
func (s *Server) PostChatMessage(ctx context.Context, req api.PostChatMessageRequestObject) (api.PostChatMessageResponseObject, error) {
	a, err := s.chatActor(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	e, err := s.Chat.PostMessage(ctx, a, req.RoomId, req.Body.Message, req.Params.XClientToken)
	if err != nil {
		return nil, err
	}
	return api.PostChatMessage201JSONResponse(chatEventOf(e)), nil
}

// PostChatImage posts an image message; the image is stored only once the poster is known to
// be a participant.
func (s *Server) PostChatImage(ctx context.Context, req api.PostChatImageRequestObject) (api.PostChatImageResponseObject, error) {
	a, err := s.chatActor(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	e, err := s.Chat.PostImage(ctx, a, req.RoomId, func(ctx context.Context) (int64, error) {
		f, err := s.upload(ctx, a.UserID, req.Body)
		return f.ID, err
	})
	if err != nil {
		return nil, err
	}
	return api.PostChatImage201JSONResponse(chatEventOf(e)), nil
}

// DeleteChatMessage deletes the caller's own message.
func (s *Server) DeleteChatMessage(ctx context.Context, req api.DeleteChatMessageRequestObject) (api.DeleteChatMessageResponseObject, error) {
	a, err := s.chatActor(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	if err := s.Chat.DeleteMessage(ctx, a, req.RoomId, req.EventIndex); err != nil {
		return nil, err
	}
	return api.DeleteChatMessage204Response{}, nil
}

// SetChatReadMarker moves the caller's read marker.
func (s *Server) SetChatReadMarker(ctx context.Context, req api.SetChatReadMarkerRequestObject) (api.SetChatReadMarkerResponseObject, error) {
	a, err := s.chatActor(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	marker, unread, err := s.Chat.SetReadMarker(ctx, a, req.RoomId, req.Body.EventIndex)
	if err != nil {
		return nil, err
	}
	return api.SetChatReadMarker200JSONResponse{RoomId: req.RoomId, EventIndex: marker, UnreadCount: unread}, nil
}

// StreamChatEvents holds a Server-Sent Events stream of the acting profile's rooms.
func (s *Server) StreamChatEvents(ctx context.Context, req api.StreamChatEventsRequestObject) (api.StreamChatEventsResponseObject, error) {
	a, err := s.chatActor(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	var resume map[int64]int64
	if req.Params.LastEventID != nil {
		if resume, err = chat.ParseLastEventID(*req.Params.LastEventID); err != nil {
			return nil, err
		}
	}
	st, err := s.Chat.OpenStream(ctx, a, resume)
	if err != nil {
		return nil, err
	}
	return chatStream{ctx: ctx, stream: st, log: s.Log, writeTimeout: s.Chat.WriteTimeout(), stopping: s.Drain.stopped()}, nil
}

// chatStream writes the stream as it happens; the generated response types only copy a body.
type chatStream struct {
	ctx    context.Context
	stream *chat.Stream
	log    *slog.Logger
	// writeTimeout bounds each write: a client that stops reading is disconnected.
	writeTimeout time.Duration
	// stopping closes when the server drains: the stream ends with a retry hint.
	stopping <-chan struct{}
}

func (c chatStream) VisitStreamChatEventsResponse(w http.ResponseWriter) error {
	defer c.stream.Close()
	rc := http.NewResponseController(w)
	// Whatever deadlines the server set for the request do not apply to a stream: it ends with
	// the client, its session or the process; each write has its own deadline.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(frame string) error {
		if err := rc.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			return err
		}
		if _, err := io.WriteString(w, frame); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send("retry: 2000\n: connected\n\n"); err != nil {
		return nil //nolint:nilerr // the client is gone; nothing to answer
	}
	emit := func(e chat.Event) error {
		data, err := json.Marshal(chatEventOf(e))
		if err != nil {
			return fmt.Errorf("encode chat event: %w", err)
		}
		return send(fmt.Sprintf("id: %d:%d\nevent: chat\ndata: %s\n\n", e.RoomID, e.Index, data))
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	go func() {
		select {
		case <-c.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := c.stream.Run(ctx, emit, func() error { return send(": ping\n\n") }); err != nil && ctx.Err() == nil {
		c.log.DebugContext(c.ctx, "chat stream ended", "err", err)
	}
	select {
	case <-c.stopping:
		// The client reconnects (to another replica) with its Last-Event-ID after this delay.
		_ = send(drainRetry)
	default:
	}
	return nil
}
