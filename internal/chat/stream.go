package chat

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/domain"
)

// Live streams. Each API replica holds one Redis subscription (the hub) and hands each
// published event to the streams of the profiles it is addressed to. A stream never trusts
// pub/sub alone: it delivers an event straight away only when it is the next index of a room
// the profile is in; anything else (a gap, a room it just joined, a message lost while Redis
// reconnected, a full buffer) makes it read the room from PostgreSQL, which is the truth. The
// same read runs at every heartbeat. So each room's events reach the client in index order,
// each once, with no gap.

// hub is a replica's Redis subscription and the streams it feeds.
type hub struct {
	log  *slog.Logger
	mu   sync.Mutex
	subs map[int64]map[*Stream]struct{} // by profile id
	done chan struct{}
}

func startHub(ctx context.Context, rdb redis.UniversalClient, channel, sessionChannel string, log *slog.Logger) (*hub, error) {
	ps := rdb.Subscribe(ctx, channel, sessionChannel)
	for range 2 { // both subscriptions are confirmed before anyone streams
		if _, err := ps.Receive(ctx); err != nil {
			_ = ps.Close()
			return nil, fmt.Errorf("subscribe to %s: %w", channel, err)
		}
	}
	h := &hub{log: log, subs: map[int64]map[*Stream]struct{}{}, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		defer ps.Close()
		ch := ps.Channel(redis.WithChannelSize(1024))
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				if m.Channel == sessionChannel {
					h.endSessions(m.Payload)
					continue
				}
				h.dispatch(m.Payload)
			}
		}
	}()
	return h, nil
}

func (h *hub) wait() { <-h.done }

func (h *hub) dispatch(payload string) {
	var w wireEvent
	if err := json.Unmarshal([]byte(payload), &w); err != nil {
		h.log.Warn("undecodable chat event on pub/sub", "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range w.To {
		for st := range h.subs[p] {
			st.offer(w.Event)
		}
	}
}

// endSessions ends this replica's streams that an auth.SessionEnd names: the one way streams
// are ended from outside (sign-out, revocation, password change, deactivation, refresh-token
// reuse, and an admin's lock of a user or a profile).
func (h *hub) endSessions(payload string) {
	var e auth.SessionEnd
	if err := json.Unmarshal([]byte(payload), &e); err != nil {
		h.log.Warn("undecodable session end on pub/sub", "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, streams := range h.subs {
		for st := range streams {
			if e.Ends(st.actor.UserID, st.actor.SessionID, st.actor.ActingProfileID) {
				st.end()
			}
		}
	}
}

func (h *hub) add(st *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[st.actor.ActingProfileID] == nil {
		h.subs[st.actor.ActingProfileID] = map[*Stream]struct{}{}
	}
	h.subs[st.actor.ActingProfileID][st] = struct{}{}
}

func (h *hub) remove(st *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[st.actor.ActingProfileID], st)
	if len(h.subs[st.actor.ActingProfileID]) == 0 {
		delete(h.subs, st.actor.ActingProfileID)
	}
}

// Stream is one client's live view of its acting profile's rooms.
type Stream struct {
	svc   *Service
	actor access.Caller
	lease string

	in      chan Event    // bounded: when full, events are dropped and read from the database
	stale   chan struct{} // signalled when in overflowed: catch up from the database
	ended   chan struct{} // closed when an auth.SessionEnd names the stream (hub.endSessions)
	endOnce sync.Once

	pos    map[int64]int64 // per room: the last index delivered (or known to be unreadable)
	live   map[int64]bool  // per room: the profile takes part in it now
	resume map[int64]int64 // rooms to replay from, given by Last-Event-ID

	closeOnce sync.Once
}

// streamBuffer bounds the events waiting for one stream's writer: a slow or stalled client
// costs at most this much memory; beyond it events are dropped and read from the database when
// the client catches up.
const streamBuffer = 256

func newStream(s *Service, a access.Caller, lease string) *Stream {
	return &Stream{
		svc: s, actor: a, lease: lease,
		in: make(chan Event, streamBuffer), stale: make(chan struct{}, 1), ended: make(chan struct{}),
		pos: map[int64]int64{}, live: map[int64]bool{}, resume: map[int64]int64{},
	}
}

// ParseLastEventID reads a Last-Event-ID: one or more "room_id:event_index" pairs separated
// by commas (a client may keep one per room). Malformed input is a 400.
func ParseLastEventID(v string) (map[int64]int64, error) {
	out := map[int64]int64{}
	if v == "" {
		return out, nil
	}
	for _, pair := range strings.Split(v, ",") {
		r, i, ok := strings.Cut(strings.TrimSpace(pair), ":")
		room, err1 := strconv.ParseInt(r, 10, 64)
		index, err2 := strconv.ParseInt(i, 10, 64)
		if !ok || err1 != nil || err2 != nil || room <= 0 || index < -1 {
			return nil, domain.Invalid("Last-Event-ID", "must be room_id:event_index pairs separated by commas")
		}
		if cur, seen := out[room]; !seen || index > cur {
			out[room] = index
		}
	}
	return out, nil
}

// OpenStream registers a live stream of the acting profile's rooms, resuming after the
// positions of resume (room id → last event index received). Too many open streams of the
// user is a 429.
func (s *Service) OpenStream(ctx context.Context, a access.Caller, resume map[int64]int64) (*Stream, error) {
	lease, err := s.acquireStreamLease(ctx, a.UserID)
	if err != nil {
		return nil, err
	}
	st := newStream(s, a, lease)
	// Subscribe before reading the positions: an event committed in between is either in the
	// positions (and skipped when it arrives) or arrives after them.
	s.hub.add(st)
	positions, err := s.q.ListChatStreamPositions(ctx, a.ActingProfileID)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("chat stream positions: %w", err)
	}
	for _, p := range positions {
		st.pos[p.RoomID] = p.LastEventIndex
		st.live[p.RoomID] = p.Live
	}
	for room, index := range resume {
		// Rooms the profile was never in are ignored; so are positions with nothing after them.
		if last, ok := st.pos[room]; ok && index < last {
			st.pos[room] = index
			st.resume[room] = index
		}
	}
	return st, nil
}

// offer is called by the hub; it never blocks. When the buffer is full the event is dropped and
// the stream told to catch up from the database.
func (st *Stream) offer(e Event) {
	select {
	case st.in <- e:
	default:
		select {
		case st.stale <- struct{}{}:
		default:
		}
	}
}

// end makes Run return: the stream's session, user or profile ended.
func (st *Stream) end() { st.endOnce.Do(func() { close(st.ended) }) }

// Close unregisters the stream and gives back its slot. Run closes it too.
func (st *Stream) Close() {
	st.closeOnce.Do(func() {
		st.svc.hub.remove(st)
		st.svc.releaseStreamLease(st.actor.UserID, st.lease)
	})
}

// Run sends the missed events of the resumed rooms, then live events, to emit, in index order
// per room; and calls heartbeat every heartbeat interval. It returns when ctx ends, the service
// shuts down, or emit or heartbeat fail (the client is gone).
func (st *Stream) Run(ctx context.Context, emit func(Event) error, heartbeat func() error) error {
	defer st.Close()
	for _, room := range slices.Sorted(maps.Keys(st.resume)) {
		if err := st.catchUp(ctx, room, -1, emit); err != nil {
			return err
		}
	}
	ticker := time.NewTicker(st.svc.set.Heartbeat)
	defer ticker.Stop()
	// The stream ends with its access token (the client reconnects with a fresh one).
	var expired <-chan time.Time
	if !st.actor.ExpiresAt.IsZero() {
		timer := time.NewTimer(st.actor.ExpiresAt.Sub(st.svc.now()))
		defer timer.Stop()
		expired = timer.C
	}
	// The slot is renewed on its own clock, whatever the writes do; a client that stops
	// reading is cut off by the write deadline and then its slot is given back.
	renewCtx, stopRenew := context.WithCancel(ctx)
	defer stopRenew()
	go st.renewLease(renewCtx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-st.svc.ctx.Done():
			return nil
		case <-st.ended:
			return nil
		case <-expired:
			return nil
		case e := <-st.in:
			if err := st.handle(ctx, e, emit); err != nil {
				return err
			}
		case <-st.stale:
			if err := st.reconcile(ctx, emit); err != nil {
				return err
			}
		case <-ticker.C:
			if err := heartbeat(); err != nil {
				return nil //nolint:nilerr // the client went away
			}
			// Announcements of ended sessions can be lost (Redis reconnecting); the session
			// row is the truth and is checked here too.
			if !st.sessionLive(ctx) {
				return nil
			}
			if err := st.reconcile(ctx, emit); err != nil {
				return err
			}
		}
	}
}

func (st *Stream) renewLease(ctx context.Context) {
	t := time.NewTicker(st.svc.leaseTTL() / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st.svc.renewStreamLease(ctx, st.actor.UserID, st.lease)
		}
	}
}

// sessionLive checks that the stream's session and acting profile are still usable; a failed
// check (database unavailable) keeps the stream.
func (st *Stream) sessionLive(ctx context.Context) bool {
	if st.actor.SessionID == 0 {
		return true
	}
	row, err := st.svc.q.GetLiveSessionForAuth(ctx, db.GetLiveSessionForAuthParams{
		ID: st.actor.SessionID, UserID: st.actor.UserID, ActingProfileID: st.actor.ActingProfileID,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return false
	}
	if err != nil {
		return true
	}
	return row.ActingOk
}

func (st *Stream) handle(ctx context.Context, e Event, emit func(Event) error) error {
	last, known := st.pos[e.RoomID]
	switch {
	case known && e.Index <= last:
		return nil // already delivered
	case known && st.live[e.RoomID] && e.Index == last+1:
		if err := emit(e); err != nil {
			return err
		}
		st.advance(e)
		return nil
	}
	return st.catchUp(ctx, e.RoomID, e.Index, emit)
}

// advance records a delivered event; the profile's own arrival and departure switch the room
// between "in it" and "not in it".
func (st *Stream) advance(e Event) {
	st.pos[e.RoomID] = e.Index
	if e.about(st.actor.ActingProfileID) {
		switch e.Type {
		case ParticipantIn:
			st.live[e.RoomID] = true
		case ParticipantOut, ParticipantKicked:
			st.live[e.RoomID] = false
		}
	}
}

// catchUp delivers, from the database, the room's events after the stream's position that the
// profile may read. upTo is an index known to be committed (-1: none): events up to it that the
// profile may not read will never become readable, so the position moves past them.
func (st *Stream) catchUp(ctx context.Context, roomID, upTo int64, emit func(Event) error) error {
	from, known := st.pos[roomID]
	if !known {
		from = -1
	}
	const page = 200
	var last *Event
	for {
		rows, err := st.svc.q.ListChatEventsAfter(ctx, db.ListChatEventsAfterParams{
			RoomID: roomID, AfterIndex: from, BeforeIndex: 1<<63 - 1, ProfileID: st.actor.ActingProfileID, MaxRows: page,
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			st.svc.log.WarnContext(ctx, "chat stream catch-up", "room_id", roomID, "err", err)
			return nil // the next heartbeat tries again
		}
		for _, r := range rows {
			e := eventOf(r)
			if err := emit(e); err != nil {
				return err
			}
			st.advance(e)
			from, last = e.Index, &e
		}
		if len(rows) < page {
			break
		}
	}
	// What the profile may read ends with its own departure when it is no longer in the room;
	// anything else means it is in it (the creator of a room has no PARTICIPANT_IN of its own).
	if last != nil {
		st.live[roomID] = !(last.about(st.actor.ActingProfileID) && (last.Type == ParticipantOut || last.Type == ParticipantKicked))
	}
	st.pos[roomID] = max(from, upTo)
	return nil
}

// reconcile compares every room of the profile with what the stream delivered and catches up
// where the database is ahead (lost publications, a full buffer, rooms joined meanwhile).
func (st *Stream) reconcile(ctx context.Context, emit func(Event) error) error {
	positions, err := st.svc.q.ListChatStreamPositions(ctx, st.actor.ActingProfileID)
	if err != nil {
		if ctx.Err() == nil {
			st.svc.log.WarnContext(ctx, "chat stream positions", "err", err)
		}
		return nil
	}
	for _, p := range positions {
		if last, known := st.pos[p.RoomID]; known && p.LastEventIndex <= last {
			continue
		}
		if err := st.catchUp(ctx, p.RoomID, p.LastEventIndex, emit); err != nil {
			return err
		}
	}
	return nil
}

// Stream slots: a sorted set per user in Redis, member = one stream, score = when its lease
// ends. Streams renew their lease at every heartbeat, so the slots of a crashed replica free
// themselves. Shared by all replicas, so the limit is per user, not per process.

var acquireScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`)

func (s *Service) leaseKey(userID int64) string {
	return s.set.RedisKeyPrefix + "chat:streams:" + strconv.FormatInt(userID, 10)
}

func (s *Service) leaseTTL() time.Duration { return 2*s.set.Heartbeat + 10*time.Second }

func (s *Service) acquireStreamLease(ctx context.Context, userID int64) (string, error) {
	member := rand.Text()
	now := s.now()
	ok, err := acquireScript.Run(ctx, s.rdb, []string{s.leaseKey(userID)},
		now.UnixMilli(), s.set.StreamsPerUser, now.Add(s.leaseTTL()).UnixMilli(), member, s.leaseTTL().Milliseconds()).Int()
	if err != nil {
		return "", fmt.Errorf("chat stream slot: %w", err)
	}
	if ok == 0 {
		e := domain.E(domain.KindRateLimited, "chat.too_many_streams",
			fmt.Sprintf("At most %d live streams per account; close one first.", s.set.StreamsPerUser))
		e.RetryAfter = s.set.Heartbeat
		return "", e
	}
	return member, nil
}

func (s *Service) renewStreamLease(ctx context.Context, userID int64, member string) {
	key := s.leaseKey(userID)
	exp := s.now().Add(s.leaseTTL())
	if err := s.rdb.ZAddXX(ctx, key, redis.Z{Score: float64(exp.UnixMilli()), Member: member}).Err(); err != nil && !errors.Is(err, context.Canceled) {
		s.log.WarnContext(ctx, "renew chat stream slot", "err", err)
	}
	s.rdb.PExpire(ctx, key, s.leaseTTL())
}

func (s *Service) releaseStreamLease(userID int64, member string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.rdb.ZRem(ctx, s.leaseKey(userID), member).Err(); err != nil {
		s.log.Warn("release chat stream slot", "err", err)
	}
}
