package chat

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/push"
)

// Delivery of committed events. Every event goes to the live streams of its audience (one Redis
// PUBLISH; each replica hands it to its own streams) and, as a push, to the devices of the
// audience's users except the device that caused it. Delivery never fails the request: a lost
// publication is caught up by the streams from the database, a lost push is only a push.

// wireEvent is what travels over Redis pub/sub.
type wireEvent struct {
	Event Event   `json:"event"`
	To    []int64 `json:"to"` // the profiles whose streams get it
}

type pushJob struct {
	userIDs       []int64
	exceptSession int64
	msg           push.Message
}

// deliver hands committed events to streams and push. The request waits only for the Redis
// publication; pushes are queued for the background workers.
func (s *Service) deliver(ctx context.Context, exceptSession int64, events []Event) {
	if len(events) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for room, evs := range byRoom(events) {
		s.deliverRoom(ctx, exceptSession, room, evs)
	}
}

func byRoom(events []Event) map[int64][]Event {
	m := map[int64][]Event{}
	for _, e := range events {
		m[e.RoomID] = append(m[e.RoomID], e)
	}
	return m
}

func (s *Service) deliverRoom(ctx context.Context, exceptSession, roomID int64, events []Event) {
	var targets []int64
	for _, e := range events {
		if e.TargetProfileID != nil {
			targets = append(targets, *e.TargetProfileID)
		}
	}
	audience, err := s.q.ListChatAudience(ctx, db.ListChatAudienceParams{RoomID: roomID, TargetProfileIds: targets})
	if err != nil {
		s.log.WarnContext(ctx, "chat audience", "room_id", roomID, "err", err)
		return
	}
	roomName := ""
	pipe := s.rdb.Pipeline()
	for _, e := range events {
		var profiles, users []int64
		for _, m := range audience {
			roomName = m.RoomName
			if m.Live || e.about(m.ProfileID) {
				profiles = append(profiles, m.ProfileID)
				users = append(users, m.UserID)
			}
		}
		if len(profiles) == 0 {
			continue
		}
		payload, err := json.Marshal(wireEvent{Event: e, To: profiles})
		if err != nil {
			s.log.ErrorContext(ctx, "encode chat event", "err", err)
			continue
		}
		pipe.Publish(ctx, s.channel(), payload)
		slices.Sort(users)
		s.enqueuePush(ctx, pushJob{userIDs: slices.Compact(users), exceptSession: exceptSession, msg: pushMessage(e, roomName)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// Streams notice the gap at the next event or heartbeat and read it from the database.
		s.log.WarnContext(ctx, "publish chat events", "room_id", roomID, "err", err)
	}
}

func (s *Service) enqueuePush(ctx context.Context, j pushJob) {
	if len(j.userIDs) == 0 {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return
	}
	select {
	case s.pushes <- j:
	default:
		s.log.WarnContext(ctx, "push queue full; push dropped", "room_id", j.msg.Data["room_id"], "event_index", j.msg.Data["event_index"])
	}
}

func (s *Service) pushWorker() {
	defer s.workers.Done()
	for j := range s.pushes {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		s.push.SendToUsers(ctx, j.userIDs, j.exceptSession, j.msg)
		cancel()
	}
}

// pushLimit keeps a push under FCM's 4 KB payload limit whatever the message length.
const pushLimit = 1000

// pushMessage is the FCM data message of an event: plain string values, the keys of docs/product.md §8
// plus the ones the shipped Android client reads (uuid, caused_by_participant_id). A posted text
// also shows a notification: the room's name and the text.
func pushMessage(e Event, roomName string) push.Message {
	text, cut := domain.CutBytes(e.Message, pushLimit)
	data := map[string]string{
		"type":        "chat",
		"uuid":        strconv.FormatInt(e.ID, 10),
		"room_id":     strconv.FormatInt(e.RoomID, 10),
		"event_index": strconv.FormatInt(e.Index, 10),
		"event_type":  e.Type,
		"message":     text,
		"created_at":  e.CreatedAt.UTC().Format(time.RFC3339),
	}
	if cut {
		data["message_truncated"] = "true"
	}
	optional := map[string]*int64{
		"caused_by_profile_id": e.CausedByProfileID, "caused_by_participant_id": e.CausedByParticipantID,
		"target_profile_id": e.TargetProfileID, "target_event_index": e.TargetEventIndex,
	}
	for k, v := range optional {
		if v != nil {
			data[k] = strconv.FormatInt(*v, 10)
		}
	}
	if e.ImageFileKey != nil {
		data["image_url"] = files.URL(*e.ImageFileKey)
	}
	m := push.Message{Data: data}
	if e.Type == MessagePosted && roomName != "" && text != "" {
		m.Title, m.Body = roomName, text
	}
	return m
}
