package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/txn"
)

// RoomPage is where a page of the room list starts: after the room last active at At with id
// ID (zero for the first page).
type RoomPage struct {
	At time.Time
	ID int64
}

// ListRooms returns the rooms the acting profile takes part in, most recently active first,
// and where the next page starts (nil on the last page).
func (s *Service) ListRooms(ctx context.Context, a access.Caller, after RoomPage, limit int) ([]Room, *RoomPage, error) {
	if after.ID == 0 {
		after = RoomPage{At: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ID: 1<<63 - 1}
	}
	rows, err := s.q.ListChatRoomsOfProfile(ctx, db.ListChatRoomsOfProfileParams{
		ProfileID: a.ActingProfileID, BeforeAt: after.At, BeforeID: after.ID, MaxRows: int32(limit + 1),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list chat rooms: %w", err)
	}
	var next *RoomPage
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[len(rows)-1].ChatRoom
		next = &RoomPage{At: last.LastEventAt, ID: last.ID}
	}
	rooms := make([]Room, len(rows))
	ids := make([]int64, len(rows))
	for i, r := range rows {
		read := r.ReadEventIndex
		rooms[i] = Room{ChatRoom: r.ChatRoom, Access: access.RoomMember, ReadEventIndex: &read}
		ids[i] = r.ChatRoom.ID
	}
	if err := s.fillParticipants(ctx, s.q, rooms, ids); err != nil {
		return nil, nil, err
	}
	return rooms, next, nil
}

func (s *Service) fillParticipants(ctx context.Context, q *db.Queries, rooms []Room, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := q.ListChatParticipantsOfRooms(ctx, ids)
	if err != nil {
		return fmt.Errorf("list chat participants: %w", err)
	}
	byRoom := make(map[int64][]Participant, len(ids))
	for _, p := range rows {
		byRoom[p.RoomID] = append(byRoom[p.RoomID], Participant{
			ProfileID: p.ProfileID, Name: p.Name, ImageFileID: p.ImageFileID, ImageFileKey: p.ImageFileKey, JoinedAt: p.JoinedAt, LeftAt: p.LeftAt, Kicked: p.Kicked,
		})
	}
	for i := range rooms {
		rooms[i].Participants = byRoom[rooms[i].ID]
		if rooms[i].Participants == nil {
			rooms[i].Participants = []Participant{}
		}
	}
	return nil
}

// GetRoom returns a room as the acting profile may see it.
func (s *Service) GetRoom(ctx context.Context, a access.Caller, roomID int64) (Room, error) {
	return s.loadRoom(ctx, s.q, a, roomID)
}

func (s *Service) loadRoom(ctx context.Context, q *db.Queries, a access.Caller, roomID int64) (Room, error) {
	row, _, acc, err := s.standing(ctx, q, a, roomID)
	if err != nil {
		return Room{}, err
	}
	room := Room{ChatRoom: row.ChatRoom, Access: acc}
	if acc == access.RoomMember {
		read := row.ReadEventIndex
		room.ReadEventIndex = &read
	}
	rooms := []Room{room}
	if err := s.fillParticipants(ctx, q, rooms, []int64{roomID}); err != nil {
		return Room{}, err
	}
	return rooms[0], nil
}

// CreateInput describes a new room.
type CreateInput struct {
	InviteProfileIDs []int64
	Name             *string
	Description      *string
	Private          *bool
}

// ExistingRoomError answers a 1:1 room request when the two profiles already share one; Room
// is that room as the requester sees it.
type ExistingRoomError struct {
	Err  *domain.Error // the 409 problem
	Room Room
}

func (e *ExistingRoomError) Error() string { return e.Err.Error() }
func (e *ExistingRoomError) Unwrap() error { return e.Err }

// CreateRoom creates a room owned by the acting profile and brings the invited profiles in.
// With exactly one invitee and a live 1:1 room of the two, nothing is created and the answer is
// an *ExistingRoomError. When every invitation fails nothing is created either.
func (s *Service) CreateRoom(ctx context.Context, a access.Caller, in CreateInput) (Room, []FailedInvitation, error) {
	name, err := cleanRoomName(in.Name)
	if err != nil {
		return Room{}, nil, err
	}
	private := true
	if in.Private != nil {
		private = *in.Private
	}
	ids := dedupe(in.InviteProfileIDs)
	var (
		roomID   int64
		existing int64
		events   []Event
		failed   []FailedInvitation
	)
	err = txn.Do(ctx, s.pool, func(t *txn.Tx) error {
		q := t.Q
		roomID, existing, events, failed = 0, 0, nil, nil // a retried attempt starts afresh
		t.AfterCommit(func(ctx context.Context) { s.deliver(ctx, a.SessionID, events) })
		if len(ids) == 1 && ids[0] != a.ActingProfileID {
			if err := q.LockChatPair(ctx, db.LockChatPairParams{A: a.ActingProfileID, B: ids[0]}); err != nil {
				return fmt.Errorf("lock 1:1 pair: %w", err)
			}
			id, err := q.FindOneToOneChatRoom(ctx, db.FindOneToOneChatRoomParams{A: a.ActingProfileID, B: ids[0]})
			switch {
			case err == nil:
				existing = id
				return nil
			case !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("find 1:1 room: %w", err)
			}
		}
		decisions, err := decideInvitations(ctx, q, a, a.ActingProfileID, ids)
		if err != nil {
			return err
		}
		var names []string
		for _, d := range decisions {
			if d.code == access.InviteOK {
				names = append(names, d.name)
			} else {
				failed = append(failed, d.failure())
			}
		}
		if len(names) == 0 {
			return allRefused(failed)
		}
		if name == nil {
			auto := autoName(names)
			name = &auto
		}
		room, err := q.CreateChatRoom(ctx, db.CreateChatRoomParams{
			Name: *name, Description: cleanDescription(in.Description), OwnerProfileID: a.ActingProfileID, Private: private,
		})
		if err != nil {
			return fmt.Errorf("create chat room: %w", err)
		}
		roomID = room.ID
		if _, err := q.AddChatParticipant(ctx, db.AddChatParticipantParams{
			RoomID: room.ID, ProfileID: a.ActingProfileID, FirstEventIndex: 0, ReadEventIndex: -1,
		}); err != nil {
			return fmt.Errorf("add creator to chat room: %w", err)
		}
		events, err = bringIn(ctx, q, room, a.ActingProfileID, decisions)
		return err
	})
	if err != nil {
		return Room{}, nil, err
	}
	if existing != 0 {
		room, err := s.loadRoom(ctx, s.q, a, existing)
		if err != nil {
			return Room{}, nil, err
		}
		return Room{}, nil, &ExistingRoomError{
			Err:  domain.E(domain.KindConflict, "chat.room_exists", "A chat room with exactly this profile exists already; it is in `room`."),
			Room: room,
		}
	}
	room, err := s.loadRoom(ctx, s.q, a, roomID)
	return room, failed, err
}

func allRefused(failed []FailedInvitation) error {
	fields := make([]domain.FieldError, len(failed))
	for i, f := range failed {
		fields[i] = domain.FieldError{Field: fmt.Sprintf("invite_profile_ids.%d", f.ProfileID), Reason: f.Code}
	}
	return domain.E(domain.KindForbidden, access.InviteRefused, "None of the profiles can be invited; no room was created.", fields...)
}

func cleanRoomName(name *string) (*string, error) {
	if name == nil {
		return nil, nil
	}
	n, err := domain.Name("name", *name, domain.MaxNameLength)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// cleanDescription keeps a description as typed; an empty one is none.
func cleanDescription(d *string) *string {
	if d == nil || *d == "" {
		return nil
	}
	return d
}

func dedupe(ids []int64) []int64 {
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// invitation is the decision about one invited profile.
type invitation struct {
	profileID int64
	name      string
	code      string
}

func (d invitation) failure() FailedInvitation {
	return FailedInvitation{ProfileID: d.profileID, Code: d.code, Reason: invitationReasons[d.code]}
}

// decideInvitations applies the invitation rule to each invited profile other than the
// requester itself (which the caller handles), in the order asked, for a room owned by ownerID.
func decideInvitations(ctx context.Context, q *db.Queries, a access.Caller, ownerID int64, ids []int64) ([]invitation, error) {
	rows, err := q.GetChatInviteTargets(ctx, db.GetChatInviteTargetsParams{RequesterID: a.ActingProfileID, OwnerID: ownerID, ProfileIds: ids})
	if err != nil {
		return nil, fmt.Errorf("load invited profiles: %w", err)
	}
	byID := make(map[int64]db.GetChatInviteTargetsRow, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	out := make([]invitation, 0, len(ids))
	for _, id := range ids {
		if id == a.ActingProfileID {
			out = append(out, invitation{profileID: id, code: access.InviteAlreadyPresent})
			continue
		}
		t, ok := byID[id]
		code := access.Invite(access.InviteFacts{
			Alive: ok && t.Alive, SameUser: ok && t.UserID == a.UserID,
			FromRequester: access.Status(t.FromRequester), ToRequester: access.Status(t.ToRequester),
			BlockedWithOwner: t.BlockedWithOwner, AnonymousInvite: t.CanAnonymousInvite,
		})
		out = append(out, invitation{profileID: id, name: t.Name, code: code})
	}
	return out, nil
}

// bringIn adds the accepted invitees to a room whose row the transaction holds locked, each
// with its PARTICIPANT_IN event. A participation's first readable event is the one that
// brings it in.
func bringIn(ctx context.Context, q *db.Queries, room db.ChatRoom, inviterID int64, decisions []invitation) ([]Event, error) {
	var events []Event
	last := room.LastEventIndex
	for _, d := range decisions {
		if d.code != access.InviteOK {
			continue
		}
		if _, err := q.AddChatParticipant(ctx, db.AddChatParticipantParams{
			RoomID: room.ID, ProfileID: d.profileID, FirstEventIndex: last + 1, ReadEventIndex: last,
		}); err != nil {
			return nil, fmt.Errorf("add participant %d: %w", d.profileID, err)
		}
		ev, err := appendEvent(ctx, q, db.AppendChatEventParams{
			RoomID: room.ID, EventType: ParticipantIn, Message: fmt.Sprintf(textIn, d.name),
			CausedByProfileID: &inviterID, TargetProfileID: &d.profileID,
		})
		if err != nil {
			return nil, err
		}
		last = ev.Index
		events = append(events, ev)
	}
	return events, nil
}

// lockRoom takes a room's row lock for a change of its participants or settings.
func lockRoom(ctx context.Context, q *db.Queries, roomID int64) (db.ChatRoom, error) {
	room, err := q.LockChatRoom(ctx, roomID)
	if errors.Is(err, pgx.ErrNoRows) {
		return room, errRoomNotFound
	}
	if err != nil {
		return room, fmt.Errorf("lock chat room %d: %w", roomID, err)
	}
	return room, nil
}

// AddParticipants invites profiles into a room (participants only) and, when the acting
// profile's own id is among them, enters a public room first.
func (s *Service) AddParticipants(ctx context.Context, a access.Caller, roomID int64, profileIDs []int64) (Room, []FailedInvitation, error) {
	ids := dedupe(profileIDs)
	var (
		events []Event
		failed []FailedInvitation
	)
	err := txn.Do(ctx, s.pool, func(t *txn.Tx) error {
		q := t.Q
		events, failed = nil, nil // a retried attempt starts afresh
		t.AfterCommit(func(ctx context.Context) { s.deliver(ctx, a.SessionID, events) })
		room, err := lockRoom(ctx, q, roomID)
		if err != nil {
			return err
		}
		_, f, acc, err := s.standing(ctx, q, a, roomID)
		if err != nil {
			return err
		}
		others := slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { return id == a.ActingProfileID })
		if len(others) < len(ids) { // entering by itself
			switch {
			case f.Live:
				failed = append(failed, invitation{profileID: a.ActingProfileID, code: access.InviteAlreadyPresent}.failure())
			case access.CanEnterRoom(f):
				ev, err := enter(ctx, q, room, a.ActingProfileID)
				if err != nil {
					return err
				}
				events = append(events, ev)
				room.LastEventIndex = ev.Index
				acc = access.RoomMember
			default:
				failed = append(failed, invitation{profileID: a.ActingProfileID, code: access.InviteRefused}.failure())
			}
		}
		if len(others) == 0 {
			return nil
		}
		if acc != access.RoomMember {
			return errNotParticipant
		}
		decisions, err := decideInvitations(ctx, q, a, room.OwnerProfileID, others)
		if err != nil {
			return err
		}
		for i, d := range decisions {
			if d.code != access.InviteOK {
				continue
			}
			if _, err := q.GetLiveChatParticipant(ctx, db.GetLiveChatParticipantParams{RoomID: roomID, ProfileID: d.profileID}); err == nil {
				decisions[i].code = access.InviteAlreadyPresent
			} else if !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("check participant: %w", err)
			}
		}
		for _, d := range decisions {
			if d.code != access.InviteOK {
				failed = append(failed, d.failure())
			}
		}
		more, err := bringIn(ctx, q, room, a.ActingProfileID, decisions)
		events = append(events, more...)
		return err
	})
	if err != nil {
		return Room{}, nil, err
	}
	room, err := s.loadRoom(ctx, s.q, a, roomID)
	return room, failed, err
}

// enter adds a profile to a public room by itself.
func enter(ctx context.Context, q *db.Queries, room db.ChatRoom, profileID int64) (Event, error) {
	name, err := q.GetProfileName(ctx, profileID)
	if err != nil {
		return Event{}, fmt.Errorf("load profile name: %w", err)
	}
	next := room.LastEventIndex + 1
	if _, err := q.AddChatParticipant(ctx, db.AddChatParticipantParams{
		RoomID: room.ID, ProfileID: profileID, FirstEventIndex: next, ReadEventIndex: next,
	}); err != nil {
		return Event{}, fmt.Errorf("enter chat room: %w", err)
	}
	return appendEvent(ctx, q, db.AppendChatEventParams{
		RoomID: room.ID, EventType: ParticipantIn, Message: fmt.Sprintf(textIn, name),
		CausedByProfileID: &profileID, TargetProfileID: &profileID,
	})
}

// RemoveParticipant makes the acting profile leave (profileID is its own) or, for the owner,
// removes another participant.
func (s *Service) RemoveParticipant(ctx context.Context, a access.Caller, roomID, profileID int64) error {
	var events []Event
	err := txn.Do(ctx, s.pool, func(t *txn.Tx) error {
		q := t.Q
		events = nil // a retried attempt starts afresh
		t.AfterCommit(func(ctx context.Context) { s.deliver(ctx, a.SessionID, events) })
		room, err := lockRoom(ctx, q, roomID)
		if err != nil {
			return err
		}
		_, f, _, err := s.standing(ctx, q, a, roomID)
		if err != nil {
			return err
		}
		if profileID == a.ActingProfileID {
			if !f.Live {
				return domain.E(domain.KindNotFound, "chat.not_participant", "You are not in this room.")
			}
			events, err = leave(ctx, q, room, profileID, profileID, false)
			return err
		}
		switch {
		case !f.Live:
			return errNotParticipant
		case !f.Owner:
			return errNotOwner
		}
		if _, err := q.GetLiveChatParticipant(ctx, db.GetLiveChatParticipantParams{RoomID: roomID, ProfileID: profileID}); errors.Is(err, pgx.ErrNoRows) {
			return domain.E(domain.KindNotFound, "chat.not_participant", "This profile is not in the room.")
		} else if err != nil {
			return fmt.Errorf("check participant: %w", err)
		}
		events, err = leave(ctx, q, room, profileID, a.ActingProfileID, true)
		return err
	})
	return err
}

// leave ends a live participation in a room whose row the transaction holds locked: a
// PARTICIPANT_OUT (or PARTICIPANT_KICKED) event, the participation marked left (its row stays),
// ownership handed to the longest-standing participant when the owner goes, and the room closed
// when nobody is left.
func leave(ctx context.Context, q *db.Queries, room db.ChatRoom, profileID, causedBy int64, kicked bool) ([]Event, error) {
	name, err := q.GetProfileName(ctx, profileID)
	if err != nil {
		return nil, fmt.Errorf("load profile name: %w", err)
	}
	typ, text := ParticipantOut, textOut
	if kicked {
		typ, text = ParticipantKicked, textKicked
	}
	out, err := appendEvent(ctx, q, db.AppendChatEventParams{
		RoomID: room.ID, EventType: typ, Message: fmt.Sprintf(text, name), CausedByProfileID: &causedBy, TargetProfileID: &profileID,
	})
	if err != nil {
		return nil, err
	}
	if _, err := q.MarkChatParticipantLeft(ctx, db.MarkChatParticipantLeftParams{
		RoomID: room.ID, ProfileID: profileID, LeftEventIndex: out.Index, Kicked: kicked,
	}); err != nil {
		return nil, fmt.Errorf("mark participant left: %w", err)
	}
	events := []Event{out}
	heir, err := q.OldestLiveChatParticipant(ctx, room.ID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := q.CloseChatRoom(ctx, room.ID); err != nil {
			return nil, fmt.Errorf("close chat room: %w", err)
		}
		return events, nil
	case err != nil:
		return nil, fmt.Errorf("find heir of chat room: %w", err)
	case room.OwnerProfileID != profileID:
		return events, nil
	}
	if _, err := q.HandOverChatRoom(ctx, db.HandOverChatRoomParams{ID: room.ID, OwnerProfileID: heir.ProfileID}); err != nil {
		return nil, fmt.Errorf("hand over chat room: %w", err)
	}
	heirName, err := q.GetProfileName(ctx, heir.ProfileID)
	if err != nil {
		return nil, fmt.Errorf("load profile name: %w", err)
	}
	modified, err := appendEvent(ctx, q, db.AppendChatEventParams{
		RoomID: room.ID, EventType: RoomModified, Message: fmt.Sprintf(textNewOwner, heirName), TargetProfileID: &heir.ProfileID,
	})
	if err != nil {
		return nil, err
	}
	return append(events, modified), nil
}

// LeaveAllRooms ends every live participation of a profile, inside the caller's transaction
// (profile deletion): each room gets a PARTICIPANT_OUT event, ownership moves on, rooms left
// empty close. The events reach devices and streams once that transaction commits (an
// after-commit hook); nothing is sent if it rolls back.
func (s *Service) LeaveAllRooms(ctx context.Context, t *txn.Tx, profileID int64) error {
	q := t.Q
	roomIDs, err := q.ListLiveChatRoomIDsOfProfile(ctx, profileID)
	if err != nil {
		return fmt.Errorf("list chat rooms of profile %d: %w", profileID, err)
	}
	var events []Event
	for _, id := range roomIDs { // ascending ids: one lock order for every such transaction
		room, err := lockRoom(ctx, q, id)
		if err != nil {
			return err
		}
		evs, err := leave(ctx, q, room, profileID, profileID, false)
		if err != nil {
			return err
		}
		events = append(events, evs...)
	}
	if len(events) > 0 {
		t.AfterCommit(func(ctx context.Context) { s.deliver(ctx, 0, events) })
	}
	return nil
}

// UpdateInput is a change of a room's settings; nil fields stay, an empty description clears it.
type UpdateInput struct {
	Name           *string
	Description    *string
	Private        *bool
	OwnerProfileID *int64
}

// UpdateRoom changes a room's settings (owner only) if ifMatch names its current version, and
// records a ROOM_MODIFIED event. Handing ownership to another live participant is part of it.
func (s *Service) UpdateRoom(ctx context.Context, a access.Caller, roomID int64, ifMatch *string, in UpdateInput) (Room, error) {
	_, f, _, err := s.standing(ctx, s.q, a, roomID)
	if err != nil {
		return Room{}, err
	}
	switch {
	case !f.Live:
		return Room{}, errNotParticipant
	case !f.Owner:
		return Room{}, errNotOwner
	}
	version, err := domain.IfMatch(ifMatch)
	if err != nil {
		return Room{}, err
	}
	name, err := cleanRoomName(in.Name)
	if err != nil {
		return Room{}, err
	}
	params := db.UpdateChatRoomParams{ID: roomID, OwnerProfileID: a.ActingProfileID, Name: name, Private: in.Private}
	if in.Description != nil {
		params.SetDescription, params.Description = true, cleanDescription(in.Description)
	}
	newOwner := in.OwnerProfileID
	if newOwner != nil && *newOwner == a.ActingProfileID {
		newOwner = nil
	}
	params.NewOwnerProfileID = newOwner
	var events []Event
	err = txn.Do(ctx, s.pool, func(t *txn.Tx) error {
		q := t.Q
		events = nil // a retried attempt starts afresh
		t.AfterCommit(func(ctx context.Context) { s.deliver(ctx, a.SessionID, events) })
		err := domain.Conditional(version, func() (int64, error) {
			room, err := lockRoom(ctx, q, roomID)
			if err != nil {
				return 0, err
			}
			_, f, _, err := s.standing(ctx, q, a, roomID)
			switch {
			case err != nil:
				return 0, err
			case !f.Live:
				return 0, errNotParticipant
			case !f.Owner:
				return 0, errNotOwner
			}
			return room.Version, nil
		}, func(current int64) error {
			params.Version = current
			if _, err := q.UpdateChatRoom(ctx, params); err != nil {
				return fmt.Errorf("update chat room: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		text := textModified
		if newOwner != nil {
			// The UPDATE holds the room's row lock, so the heir cannot leave before we commit.
			if _, err := q.GetLiveChatParticipant(ctx, db.GetLiveChatParticipantParams{RoomID: roomID, ProfileID: *newOwner}); errors.Is(err, pgx.ErrNoRows) {
				return domain.Invalid("owner_profile_id", "must be a participant of the room")
			} else if err != nil {
				return fmt.Errorf("check new owner: %w", err)
			}
			heirName, err := q.GetProfileName(ctx, *newOwner)
			if err != nil {
				return fmt.Errorf("load profile name: %w", err)
			}
			text = fmt.Sprintf(textNewOwner, heirName)
		}
		ev, err := appendEvent(ctx, q, db.AppendChatEventParams{
			RoomID: roomID, EventType: RoomModified, Message: text, CausedByProfileID: &a.ActingProfileID, TargetProfileID: newOwner,
		})
		events = append(events, ev)
		return err
	})
	if err != nil {
		return Room{}, err
	}
	return s.loadRoom(ctx, s.q, a, roomID)
}
