package chat

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/txn"
)

// errNotPosted rolls back a post whose author turned out not to be a live participant; the
// caller then tells why.
var errNotPosted = errors.New("author is not a live participant")

// post appends a message in one short transaction: allocating the index and inserting the event
// is one statement, and the same statement checks — after the room's row lock is taken — that
// the author is a live participant (otherwise the transaction rolls back, index and all).
func (s *Service) post(ctx context.Context, a access.Caller, p db.AppendChatEventParams) (Event, error) {
	p.CausedByProfileID = &a.ActingProfileID
	var ev Event
	err := txn.Do(ctx, s.pool, func(t *txn.Tx) error {
		e, err := appendEvent(ctx, t.Q, p)
		if err != nil {
			return err
		}
		if e.CausedByParticipantID == nil {
			return errNotPosted
		}
		ev = e
		t.AfterCommit(func(ctx context.Context) { s.deliver(ctx, a.SessionID, []Event{e}) })
		return nil
	})
	if errors.Is(err, errNotPosted) || errors.Is(err, errRoomNotFound) {
		_, err = s.requireMember(ctx, s.q, a, p.RoomID)
		if err == nil {
			err = errNotParticipant // it was a participant a moment ago
		}
	}
	if err != nil {
		return Event{}, err
	}
	return ev, nil
}

// PostMessage posts a text message. deviceToken, when the client sends it, refreshes the
// session's push token.
func (s *Service) PostMessage(ctx context.Context, a access.Caller, roomID int64, text string, deviceToken *string) (Event, error) {
	if _, err := domain.Text("message", text); err != nil {
		return Event{}, err
	}
	if deviceToken != nil && a.SessionID != 0 {
		if err := s.q.SetSessionDeviceToken(ctx, db.SetSessionDeviceTokenParams{ID: a.SessionID, DeviceToken: deviceToken}); err != nil {
			s.log.WarnContext(ctx, "store device token", "session_id", a.SessionID, "err", err)
		}
	}
	return s.post(ctx, a, db.AppendChatEventParams{RoomID: roomID, EventType: MessagePosted, Message: text})
}

// Upload stores an image and returns its file id; PostImage calls it only once the author is
// known to be allowed to post, so a refused request stores nothing.
type Upload func(ctx context.Context) (fileID int64, err error)

// PostImage posts an image message.
func (s *Service) PostImage(ctx context.Context, a access.Caller, roomID int64, upload Upload) (Event, error) {
	if _, err := s.requireMember(ctx, s.q, a, roomID); err != nil {
		return Event{}, err
	}
	fileID, err := upload(ctx)
	if err != nil {
		return Event{}, err
	}
	ev, err := s.post(ctx, a, db.AppendChatEventParams{RoomID: roomID, EventType: MessagePostedImage, Message: "", ImageFileID: &fileID})
	if err != nil {
		s.files.ReleaseAfterCommit(ctx, fileID)
		return Event{}, err
	}
	return ev, nil
}

// DeleteMessage replaces the content of the acting profile's own message and records a
// MESSAGE_DELETED event pointing at it. Deleting a deleted message again changes nothing.
func (s *Service) DeleteMessage(ctx context.Context, a access.Caller, roomID, index int64) error {
	return txn.Do(ctx, s.pool, func(t *txn.Tx) error {
		q := t.Q
		if _, err := lockRoom(ctx, q, roomID); err != nil {
			return err
		}
		if _, err := s.requireMember(ctx, q, a, roomID); err != nil {
			return err
		}
		visible, err := q.ListChatEventsAfter(ctx, db.ListChatEventsAfterParams{
			RoomID: roomID, AfterIndex: index - 1, BeforeIndex: index + 1, ProfileID: a.ActingProfileID, MaxRows: 1,
		})
		if err != nil {
			return fmt.Errorf("load chat event: %w", err)
		}
		if len(visible) == 0 {
			return domain.NotFound("The message")
		}
		target := visible[0]
		switch {
		case target.CausedByProfileID == nil || *target.CausedByProfileID != a.ActingProfileID:
			return domain.Forbidden("chat.not_author", "Only the author can delete a message.")
		case target.EventType != MessagePosted && target.EventType != MessagePostedImage:
			return domain.Forbidden("chat.not_a_message", "Only messages can be deleted.")
		case target.DeletedAt != nil:
			return nil
		}
		released, err := q.DeleteChatMessage(ctx, db.DeleteChatMessageParams{RoomID: roomID, EventIndex: index, Message: textDeleted})
		if err != nil {
			return fmt.Errorf("delete chat message: %w", err)
		}
		ev, err := appendEvent(ctx, q, db.AppendChatEventParams{
			RoomID: roomID, EventType: MessageDeleted, Message: textDeleted, CausedByProfileID: &a.ActingProfileID, TargetEventIndex: &index,
		})
		if err != nil {
			return err
		}
		if released != nil {
			t.AfterCommit(func(ctx context.Context) { s.files.ReleaseAfterCommit(ctx, *released) })
		}
		t.AfterCommit(func(ctx context.Context) { s.deliver(ctx, a.SessionID, []Event{ev}) })
		return nil
	})
}

// EventPage selects events by event_index: After and Before are exclusive bounds (nil = none).
// With After, the page is the oldest events above it; otherwise the newest below Before (or
// the latest events). Pages are in ascending order either way.
type EventPage struct {
	After, Before *int64
	Limit         int
}

// ListEvents returns a page of the events the acting profile may read, and whether more exist
// beyond the page in the direction asked.
func (s *Service) ListEvents(ctx context.Context, a access.Caller, roomID int64, page EventPage) ([]Event, bool, error) {
	_, _, acc, err := s.standing(ctx, s.q, a, roomID)
	if err != nil {
		return nil, false, err
	}
	if acc == access.RoomVisible {
		return nil, false, errNotParticipant
	}
	after, before := int64(-1), int64(math.MaxInt64)
	if page.After != nil {
		after = *page.After
	}
	if page.Before != nil {
		before = *page.Before
	}
	var rows []db.ChatEvent
	if page.After != nil {
		rows, err = s.q.ListChatEventsAfter(ctx, db.ListChatEventsAfterParams{
			RoomID: roomID, AfterIndex: after, BeforeIndex: before, ProfileID: a.ActingProfileID, MaxRows: int32(page.Limit + 1),
		})
	} else {
		rows, err = s.q.ListChatEventsBefore(ctx, db.ListChatEventsBeforeParams{
			RoomID: roomID, AfterIndex: after, BeforeIndex: before, ProfileID: a.ActingProfileID, MaxRows: int32(page.Limit + 1),
		})
	}
	if err != nil {
		return nil, false, fmt.Errorf("list chat events: %w", err)
	}
	more := len(rows) > page.Limit
	if more {
		rows = rows[:page.Limit]
	}
	if page.After == nil {
		slices.Reverse(rows)
	}
	events := make([]Event, len(rows))
	for i, r := range rows {
		events[i] = eventOf(r)
	}
	return events, more, nil
}

// SetReadMarker moves the acting profile's read marker forward (never past the last event) and
// returns the stored marker and the unread count.
func (s *Service) SetReadMarker(ctx context.Context, a access.Caller, roomID, index int64) (marker, unread int64, err error) {
	row, err := s.q.SetChatReadMarker(ctx, db.SetChatReadMarkerParams{RoomID: roomID, ProfileID: a.ActingProfileID, EventIndex: index})
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = s.requireMember(ctx, s.q, a, roomID)
		if err == nil {
			err = errNotParticipant
		}
		return 0, 0, err
	}
	if err != nil {
		return 0, 0, fmt.Errorf("set read marker: %w", err)
	}
	return row.ReadEventIndex, max(row.LastEventIndex-row.ReadEventIndex, 0), nil
}
