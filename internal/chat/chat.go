// Package chat owns chat rooms (docs/product.md §8): rooms with an owner and soft-leaving participants,
// an ordered log of events per room, read markers, delivery of every committed event to the
// participants' devices (push) and to live streams (Redis pub/sub fan-out across API replicas).
//
// Every operation runs in its own transaction; the rules of who may do what live in
// internal/access (access.Room, access.Invite) and are applied here.
//
// What a profile may read: a live participant reads the events from the one that brought it in
// (its PARTICIPANT_IN, or the start for the creator) onwards. A former participant keeps read
// access to the events of its past participations, up to and including its own
// PARTICIPANT_OUT/PARTICIPANT_KICKED, and sees the room's detail, but cannot post, delete,
// invite, kick, set read markers or change the room. Nobody reads what happened while they were
// not in the room.
package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/push"
)

// Event types, stored and sent as text.
const (
	ParticipantIn      = "PARTICIPANT_IN"
	ParticipantOut     = "PARTICIPANT_OUT"
	ParticipantKicked  = "PARTICIPANT_KICKED"
	MessagePosted      = "MESSAGE_POSTED"
	MessagePostedImage = "MESSAGE_POSTED_IMAGE"
	MessageDeleted     = "MESSAGE_DELETED"
	RoomModified       = "ROOM_MODIFIED"
)

// The texts the app shows for system events, kept verbatim from the predecessor ({name} is the
// global name of the profile the event is about). ROOM_MODIFIED is new.
const (
	textIn          = "%s님이 들어왔습니다."
	textOut         = "%s님이 나가셨습니다."
	textKicked      = "%s님이 내보내졌습니다."
	textDeleted     = "메시지가 삭제되었습니다."
	textModified    = "채팅방 정보가 변경되었습니다."
	textNewOwner    = "%s님이 방장이 되었습니다."
	defaultRoomName = "새 채팅방"
)

// Event is one entry of a room's log.
type Event struct {
	ID                    int64     `json:"id"`
	RoomID                int64     `json:"room_id"`
	Index                 int64     `json:"event_index"`
	Type                  string    `json:"event_type"`
	Message               string    `json:"message"`
	CausedByProfileID     *int64    `json:"caused_by_profile_id,omitempty"`
	CausedByParticipantID *int64    `json:"caused_by_participant_id,omitempty"`
	TargetProfileID       *int64    `json:"target_profile_id,omitempty"`
	TargetEventIndex      *int64    `json:"target_event_index,omitempty"`
	ImageFileID           *int64    `json:"image_file_id,omitempty"`
	ImageFileKey          *string   `json:"image_file_key,omitempty"` // the public id in the image's URL
	Deleted               bool      `json:"deleted,omitempty"`
	CreatedAt             time.Time `json:"created_at"`
}

func eventOf(e db.ChatEvent) Event {
	return Event{
		ID: e.ID, RoomID: e.RoomID, Index: e.EventIndex, Type: e.EventType, Message: e.Message,
		CausedByProfileID: e.CausedByProfileID, CausedByParticipantID: e.CausedByParticipantID,
		TargetProfileID: e.TargetProfileID, TargetEventIndex: e.TargetEventIndex, ImageFileID: e.ImageFileID, ImageFileKey: e.ImageFileKey,
		Deleted: e.DeletedAt != nil, CreatedAt: e.CreatedAt.UTC(),
	}
}

// about reports whether the event is about the profile (it came in, left or was removed).
func (e Event) about(profileID int64) bool {
	return e.TargetProfileID != nil && *e.TargetProfileID == profileID
}

// Participant is a participation as others see it.
type Participant struct {
	ProfileID    int64
	Name         string
	ImageFileID  *int64
	ImageFileKey *string
	JoinedAt     time.Time
	LeftAt       *time.Time
	Kicked       bool
}

// Room is a room as the acting profile sees it.
type Room struct {
	db.ChatRoom
	Participants []Participant
	Access       access.RoomAccess
	// ReadEventIndex is the acting profile's read marker; nil unless it takes part in the room.
	ReadEventIndex *int64
}

// Unread is the number of events after the acting profile's read marker.
func (r Room) Unread() int64 {
	if r.ReadEventIndex == nil {
		return 0
	}
	return max(r.LastEventIndex-*r.ReadEventIndex, 0)
}

// ETag is the strong entity tag of the room's settings version.
func (r Room) ETag() string { return domain.ETag(r.Version) }

// FailedInvitation says why one profile was not brought into a room.
type FailedInvitation struct {
	ProfileID int64
	Code      string
	Reason    string
}

var invitationReasons = map[string]string{
	access.InviteNotFound:       "No such profile.",
	access.InviteRefused:        "This profile cannot be invited.",
	access.InviteAlreadyPresent: "This profile is already in the room.",
}

// Settings tune the service.
type Settings struct {
	// RedisKeyPrefix namespaces the pub/sub channel and the stream counters.
	RedisKeyPrefix string
	// Heartbeat is how often a live stream sends a comment line (and re-checks it missed nothing).
	Heartbeat time.Duration
	// StreamsPerUser bounds the live streams a user holds open at once, over all replicas.
	StreamsPerUser int
	// WriteTimeout bounds one write to a live stream's client: a client that stops reading is
	// disconnected after it, and its stream slot freed.
	WriteTimeout time.Duration
	// PushWorkers send pushes in the background; PushQueue bounds the pushes waiting for them.
	PushWorkers int
	PushQueue   int
}

// Deps are what the service needs.
type Deps struct {
	Pool     *pgxpool.Pool
	Redis    redis.UniversalClient
	Push     push.Sender
	Files    *files.Service
	Log      *slog.Logger
	Settings Settings
	// Now is the clock the service compares times with (stream slot leases, the end of a
	// stream's access token); nil is time.Now.
	Now func() time.Time
}

// Service implements chat.
type Service struct {
	pool  *pgxpool.Pool
	q     *db.Queries
	rdb   redis.UniversalClient
	push  push.Sender
	files *files.Service
	log   *slog.Logger
	set   Settings
	now   func() time.Time

	// ctx ends when the process shuts down: live streams end and background work stops waiting.
	ctx    context.Context
	cancel context.CancelFunc
	hub    *hub

	mu      sync.RWMutex // guards closed against late background work
	closed  bool
	pushes  chan pushJob
	workers sync.WaitGroup
}

// New starts the service: its Redis subscription (every replica hears every event and
// hands it to its own streams) and its push workers. Streams end when ctx ends; Close waits
// for the background work.
func New(ctx context.Context, d Deps) (*Service, error) {
	if err := domain.RequireDeps("chat", map[string]any{"Pool": d.Pool, "Redis": d.Redis, "Push": d.Push, "Log": d.Log}); err != nil {
		return nil, err
	}
	set := d.Settings
	if set.Heartbeat <= 0 {
		set.Heartbeat = 15 * time.Second
	}
	if set.StreamsPerUser <= 0 {
		set.StreamsPerUser = 5
	}
	if set.WriteTimeout <= 0 {
		set.WriteTimeout = 10 * time.Second
	}
	if set.PushWorkers <= 0 {
		set.PushWorkers = 8
	}
	if set.PushQueue <= 0 {
		set.PushQueue = 10000
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Service{
		pool: d.Pool, q: db.New(d.Pool), rdb: d.Redis, push: d.Push, files: d.Files, log: d.Log, set: set,
		pushes: make(chan pushJob, set.PushQueue), now: d.Now,
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	h, err := startHub(s.ctx, d.Redis, s.channel(), auth.SessionEndChannel(set.RedisKeyPrefix), d.Log)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.hub = h
	for range set.PushWorkers {
		s.workers.Add(1)
		go s.pushWorker()
	}
	return s, nil
}

// Close ends the streams, lets queued pushes go out and waits for the background work.
func (s *Service) Close() {
	s.cancel()
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.pushes)
	}
	s.mu.Unlock()
	s.hub.wait()
	s.workers.Wait()
}

// WriteTimeout bounds one write to a live stream's client.
func (s *Service) WriteTimeout() time.Duration { return s.set.WriteTimeout }

// Heartbeat is the live streams' heartbeat interval.
func (s *Service) Heartbeat() time.Duration { return s.set.Heartbeat }

func (s *Service) channel() string { return s.set.RedisKeyPrefix + "chat:events" }

// Errors callers meet.
var (
	errRoomNotFound   = domain.NotFound("The chat room")
	errNotParticipant = domain.Forbidden("chat.not_participant", "Only participants of the room can do this.")
	errNotOwner       = domain.Forbidden("chat.not_owner", "Only the owner of the room can do this.")
)

// facts turns a room and the acting profile's standing in it into rule inputs.
func facts(row db.GetChatRoomAccessRow, profileID int64) access.RoomFacts {
	r := row.ChatRoom
	return access.RoomFacts{
		Private: r.Private, Closed: r.ClosedAt != nil, Owner: r.OwnerProfileID == profileID,
		Live: row.LiveParticipantID != nil, Former: row.Former, BlockedWithOwner: row.BlockedWithOwner,
	}
}

// standing loads the room and the acting profile's access to it; hidden rooms are not found.
func (s *Service) standing(ctx context.Context, q *db.Queries, a access.Caller, roomID int64) (db.GetChatRoomAccessRow, access.RoomFacts, access.RoomAccess, error) {
	row, err := q.GetChatRoomAccess(ctx, db.GetChatRoomAccessParams{ProfileID: a.ActingProfileID, RoomID: roomID})
	if errors.Is(err, pgx.ErrNoRows) {
		return row, access.RoomFacts{}, access.RoomHidden, errRoomNotFound
	}
	if err != nil {
		return row, access.RoomFacts{}, access.RoomHidden, fmt.Errorf("load chat room %d: %w", roomID, err)
	}
	f := facts(row, a.ActingProfileID)
	acc := access.Room(f)
	if acc == access.RoomHidden {
		return row, f, acc, errRoomNotFound
	}
	return row, f, acc, nil
}

// requireMember is standing for operations only live participants may do.
func (s *Service) requireMember(ctx context.Context, q *db.Queries, a access.Caller, roomID int64) (db.GetChatRoomAccessRow, error) {
	row, _, acc, err := s.standing(ctx, q, a, roomID)
	if err != nil {
		return row, err
	}
	if acc != access.RoomMember {
		return row, errNotParticipant
	}
	return row, nil
}

// appendEvent adds an event to a room inside the caller's transaction.
func appendEvent(ctx context.Context, q *db.Queries, p db.AppendChatEventParams) (Event, error) {
	e, err := q.AppendChatEvent(ctx, p)
	if errors.Is(err, pgx.ErrNoRows) {
		return Event{}, errRoomNotFound // closed meanwhile
	}
	if err != nil {
		return Event{}, fmt.Errorf("append %s to chat room %d: %w", p.EventType, p.RoomID, err)
	}
	return eventOf(e), nil
}

// autoName names a room after the profiles invited into it: their names joined by ", ",
// shortened to 28 characters and "..." from 30 characters on (the predecessor's rule).
func autoName(names []string) string {
	n := strings.Join(names, ", ")
	if utf8.RuneCountInString(n) >= 30 {
		n = string([]rune(n)[:28]) + "..."
	}
	if strings.TrimSpace(n) == "" {
		return defaultRoomName
	}
	return n
}
