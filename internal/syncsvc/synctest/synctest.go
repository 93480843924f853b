// Package synctest sets up the sync pipeline against real PostgreSQL and Redis for tests, and
// writes the rows the pipeline reads. Only tests import it.
package synctest

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/postgres"
	"github.com/bca-app/backend/internal/push"
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncfile/syncfiletest"
	"github.com/bca-app/backend/internal/syncsvc"
	"github.com/bca-app/backend/internal/testenv"
	"github.com/bca-app/backend/internal/txn"
)

// Env is one test's pipeline: its own database, a Redis key space, a local object store.
type Env struct {
	Pool     *pgxpool.Pool
	Redis    redis.UniversalClient
	Prefix   string
	Store    storage.Store
	Push     *Pushes
	Log      *slog.Logger
	Settings syncsvc.Settings
	// Svc is a service on all of the above; NewService makes more (e.g. one per worker).
	Svc *syncsvc.Service
}

// Options adjust an Env.
type Options struct {
	// RedisURL is a Redis server of the test's own (testenv.RedisServer); the shared one by
	// default.
	RedisURL string
	// Store replaces the local store (e.g. S3).
	Store storage.Store
	// Settings adjust the service's settings.
	Settings func(*syncsvc.Settings)
}

// New creates an Env.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, testenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	redisURL, prefix := testenv.Redis(t)
	if o.RedisURL != "" {
		redisURL = o.RedisURL
	}
	rdb := testenv.RedisClient(t, redisURL)
	store := o.Store
	if store == nil {
		local, err := storage.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		store = local
	}
	settings := syncsvc.DefaultSettings()
	settings.LockTTL = 3 * time.Second
	settings.LockWait = 10 * time.Second
	settings.TempDir = t.TempDir()
	if o.Settings != nil {
		o.Settings(&settings)
	}
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	e := &Env{
		Pool: pool, Redis: rdb, Prefix: prefix, Store: store, Push: &Pushes{}, Settings: settings,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level})),
	}
	e.Svc = e.NewService(store)
	return e
}

// NewService returns another service on the Env, writing to store, with metrics of its own.
func (e *Env) NewService(store storage.Store) *syncsvc.Service {
	s, err := syncsvc.New(syncsvc.Deps{
		Pool: e.Pool, Store: store, Redis: e.Redis, KeyPrefix: e.Prefix, Push: e.Push,
		Metrics: syncsvc.NewMetrics(prometheus.NewRegistry()), Log: e.Log, Settings: e.Settings,
	})
	if err != nil {
		panic(err)
	}
	return s
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// Pushes records push messages.
type Pushes struct {
	mu   sync.Mutex
	sent []Sent
}

// Sent is one recorded push.
type Sent struct {
	UserIDs []int64
	Msg     push.Message
}

// SendToUsers records the message.
func (p *Pushes) SendToUsers(_ context.Context, userIDs []int64, _ int64, msg push.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, Sent{UserIDs: slices.Clone(userIDs), Msg: msg})
}

// To returns the messages sent to userID, oldest first.
func (p *Pushes) To(userID int64) []push.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []push.Message
	for _, s := range p.sent {
		if slices.Contains(s.UserIDs, userID) {
			out = append(out, s.Msg)
		}
	}
	return out
}

// State returns the user's sync_states row.
func (e *Env) State(t testing.TB, userID int64) db.SyncState {
	t.Helper()
	st, err := db.New(e.Pool).GetSyncState(context.Background(), userID)
	if err != nil {
		t.Fatalf("sync state of user %d: %v", userID, err)
	}
	return st
}

// Download copies the stored object to a temporary file and returns its path.
func (e *Env) Download(t testing.TB, key string) string {
	t.Helper()
	body, _, err := e.Store.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("download %s: %v", key, err)
	}
	defer body.Close()
	path := filepath.Join(t.TempDir(), "downloaded.sqlite")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, body); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// Published reads the rows of the user's published file.
func (e *Env) Published(t testing.TB, userID int64) syncfile.Contents {
	t.Helper()
	st := e.State(t, userID)
	if st.StorageKey == nil {
		t.Fatalf("user %d has no published file", userID)
	}
	path := e.Download(t, *st.StorageKey)
	sum, _, err := syncfile.MD5File(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Etag == nil || *st.Etag != sum {
		t.Fatalf("user %d: stored ETag %v, file MD5 %s", userID, st.Etag, sum)
	}
	c, err := syncfiletest.Read(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Want is what a fresh full build for the user holds now.
func (e *Env) Want(t testing.TB, userID int64) syncfile.Contents {
	t.Helper()
	snap, err := e.Svc.Snapshot(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return snap.Contents
}

// Normalize sorts every table by id and turns empty tables into nil, the form Read returns.
func Normalize(c syncfile.Contents) syncfile.Contents {
	return syncfile.Contents{
		Profiles:      sorted(c.Profiles, func(p syncfile.Profile) int64 { return p.ID }),
		Relations:     sorted(c.Relations, func(r syncfile.Relation) int64 { return r.ID }),
		Cards:         sorted(c.Cards, func(k syncfile.Card) int64 { return k.ID }),
		Subscriptions: sorted(c.Subscriptions, func(s syncfile.Subscription) int64 { return s.ID }),
	}
}

func sorted[R any](rows []R, id func(R) int64) []R {
	if len(rows) == 0 {
		return nil
	}
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b R) int { return cmp.Compare(id(a), id(b)) })
	return out
}

// Equal reports whether two contents hold the same rows.
func Equal(a, b syncfile.Contents) bool { return reflect.DeepEqual(Normalize(a), Normalize(b)) }

// Describe prints contents for a failure message.
func Describe(c syncfile.Contents) string {
	c = Normalize(c)
	var b bytes.Buffer
	for _, p := range c.Profiles {
		fmt.Fprintf(&b, "  profile %d %q private=%v data=%s commit=%s deleted=%v email=%v\n", p.ID, p.Name, p.Private, p.Data, p.CommitID, p.DeletedAt != nil, deref(p.Email))
	}
	for _, r := range c.Relations {
		fmt.Fprintf(&b, "  relation %d %d→%d status=%d commit=%s\n", r.ID, r.FromProfileID, r.ToProfileID, r.Status, r.CommitID)
	}
	for _, k := range c.Cards {
		fmt.Fprintf(&b, "  card %d of %d %q deleted=%v commit=%s\n", k.ID, k.ProfileID, k.Name, k.DeletedAt != nil, k.CommitID)
	}
	for _, s := range c.Subscriptions {
		fmt.Fprintf(&b, "  subscription %d %d→card %d (of %d) commit=%s\n", s.ID, s.SubscribedProfileID, s.CardID, s.CardProfileID, s.CommitID)
	}
	return b.String()
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// World writes users, profiles, relations, cards and subscriptions straight into the database,
// as the write paths would (each change and its outbox bumps in one transaction), and hands the
// bumps to Notifier after commit.
type World struct {
	Pool     *pgxpool.Pool
	Notifier outbox.Notifier
	seq      atomic.Int64
}

// NewWorld returns a World on the Env's database; bumps go nowhere until Notifier is set.
func (e *Env) NewWorld() *World { return &World{Pool: e.Pool, Notifier: outbox.Nop{}} }

// Write runs fn and its bumps in one transaction and notifies after commit.
func (w *World) Write(t testing.TB, fn func(ctx context.Context, tx *outbox.Tx) error) {
	t.Helper()
	if err := w.TryWrite(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// TryWrite is Write returning the error (for concurrent writers).
func (w *World) TryWrite(ctx context.Context, fn func(ctx context.Context, tx *outbox.Tx) error) error {
	return txn.Runner{Pool: w.Pool, Notifier: w.Notifier}.Do(ctx, func(tx *outbox.Tx) error { return fn(ctx, tx) })
}

// User creates an account and returns its id.
func (w *World) User(t testing.TB) int64 {
	t.Helper()
	n := w.seq.Add(1)
	var id int64
	key := fmt.Sprintf("u%d_%d", n, time.Now().UnixNano())
	err := w.Pool.QueryRow(context.Background(), `INSERT INTO users (login_id, login_key, nickname, nickname_key, email, email_key, password_hash)
		VALUES ($1, $1, $1, $1, $1 || '@example.com', $1 || '@example.com', 'x') RETURNING id`, key).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// ProfileSpec describes a new profile.
type ProfileSpec struct {
	Name    string
	Private bool
	Data    string // JSON object; "{}" when empty
}

// Profile creates a profile of userID (and bumps its owner) and returns its id.
func (w *World) Profile(t testing.TB, userID int64, s ProfileSpec) int64 {
	t.Helper()
	var id int64
	w.Write(t, func(ctx context.Context, tx *outbox.Tx) error {
		var err error
		id, err = w.CreateProfile(ctx, tx, userID, s)
		return err
	})
	return id
}

// CreateProfile is Profile inside the caller's transaction.
func (w *World) CreateProfile(ctx context.Context, tx *outbox.Tx, userID int64, s ProfileSpec) (int64, error) {
	if s.Name == "" {
		s.Name = fmt.Sprintf("profile %d", w.seq.Add(1))
	}
	if s.Data == "" {
		s.Data = "{}"
	}
	var id int64
	if err := tx.Raw.QueryRow(ctx, `INSERT INTO profiles (user_id, name, data, private) VALUES ($1, $2, $3, $4) RETURNING id`,
		userID, s.Name, s.Data, s.Private).Scan(&id); err != nil {
		return 0, err
	}
	return id, tx.OwnersChanged(ctx, id)
}

// Relate sets from's relation to to (status 1–4), as the relation write path does.
func (w *World) Relate(t testing.TB, from, to int64, status int) {
	t.Helper()
	w.Write(t, func(ctx context.Context, tx *outbox.Tx) error { return SetRelation(ctx, tx, from, to, status) })
}

// SetRelation upserts a relation and bumps both owners (the target's visibility to the
// source's owner may depend on it, and the target's owner sees its incoming side in nothing but
// its own relations: bumping both is what the write path does).
func SetRelation(ctx context.Context, tx *outbox.Tx, from, to int64, status int) error {
	if _, err := tx.Raw.Exec(ctx, `INSERT INTO relations (from_profile_id, to_profile_id, status) VALUES ($1, $2, $3)
		ON CONFLICT (from_profile_id, to_profile_id) DO UPDATE SET status = EXCLUDED.status,
		version = relations.version + 1, modified_at = now()`, from, to, status); err != nil {
		return err
	}
	return tx.OwnersChanged(ctx, from, to)
}

// Unrelate removes a relation.
func Unrelate(ctx context.Context, tx *outbox.Tx, from, to int64) error {
	if _, err := tx.Raw.Exec(ctx, `DELETE FROM relations WHERE from_profile_id = $1 AND to_profile_id = $2`, from, to); err != nil {
		return err
	}
	return tx.OwnersChanged(ctx, from, to)
}

// Card creates a card of profileID and returns its id.
func (w *World) Card(t testing.TB, profileID int64, private bool) int64 {
	t.Helper()
	var id int64
	w.Write(t, func(ctx context.Context, tx *outbox.Tx) error {
		var err error
		id, err = CreateCard(ctx, tx, profileID, private)
		return err
	})
	return id
}

// CreateCard is Card inside the caller's transaction.
func CreateCard(ctx context.Context, tx *outbox.Tx, profileID int64, private bool) (int64, error) {
	var id int64
	if err := tx.Raw.QueryRow(ctx, `INSERT INTO cards (profile_id, name, data, private) VALUES ($1, 'card', '{"title": "t", "n": 1}', $2) RETURNING id`,
		profileID, private).Scan(&id); err != nil {
		return 0, err
	}
	return id, tx.CardsChanged(ctx, id)
}

// Subscribe subscribes profileID to cardID.
func (w *World) Subscribe(t testing.TB, profileID, cardID int64) {
	t.Helper()
	w.Write(t, func(ctx context.Context, tx *outbox.Tx) error {
		return SetSubscription(ctx, tx, profileID, cardID, true)
	})
}

// SetSubscription subscribes or unsubscribes, bumping the subscriber's owner.
func SetSubscription(ctx context.Context, tx *outbox.Tx, profileID, cardID int64, on bool) error {
	var err error
	if on {
		_, err = tx.Raw.Exec(ctx, `INSERT INTO card_subscriptions (card_id, profile_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, cardID, profileID)
	} else {
		_, err = tx.Raw.Exec(ctx, `DELETE FROM card_subscriptions WHERE card_id = $1 AND profile_id = $2`, cardID, profileID)
	}
	if err != nil {
		return err
	}
	return tx.OwnersChanged(ctx, profileID)
}

// Exec runs a statement and bumps the audiences of the profiles and cards named, in one
// transaction (for changes such as locks, deletions and edits).
func (w *World) Exec(t testing.TB, profiles, cards []int64, query string, args ...any) {
	t.Helper()
	w.Write(t, func(ctx context.Context, tx *outbox.Tx) error {
		if _, err := tx.Raw.Exec(ctx, query, args...); err != nil {
			return err
		}
		if len(cards) > 0 {
			if err := tx.CardsChanged(ctx, cards...); err != nil {
				return err
			}
		}
		if len(profiles) > 0 {
			return tx.ProfilesChanged(ctx, profiles...)
		}
		return nil
	})
}

// Users returns every user id.
func (w *World) Users(t testing.TB) []int64 {
	t.Helper()
	rows, err := w.Pool.Query(context.Background(), `SELECT id FROM users ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// FaultyStore wraps a store with a hook run before every operation: it can fail the operation
// (a storage outage) or block it (to kill a builder mid-write).
type FaultyStore struct {
	storage.Store
	hook atomic.Pointer[func(ctx context.Context, op, key string) error]
}

// NewFaultyStore wraps s; with no hook set it behaves like s.
func NewFaultyStore(s storage.Store) *FaultyStore { return &FaultyStore{Store: s} }

// SetHook installs fn (nil removes it). op is "put", "get", "head" or "delete".
func (f *FaultyStore) SetHook(fn func(ctx context.Context, op, key string) error) {
	if fn == nil {
		f.hook.Store(nil)
		return
	}
	f.hook.Store(&fn)
}

func (f *FaultyStore) before(ctx context.Context, op, key string) error {
	if h := f.hook.Load(); h != nil {
		return (*h)(ctx, op, key)
	}
	return nil
}

// Put runs the hook, then stores.
func (f *FaultyStore) Put(ctx context.Context, key string, r io.Reader, contentType string) (storage.ObjectInfo, error) {
	if err := f.before(ctx, "put", key); err != nil {
		return storage.ObjectInfo{}, err
	}
	return f.Store.Put(ctx, key, r, contentType)
}

// Get runs the hook, then reads.
func (f *FaultyStore) Get(ctx context.Context, key string) (io.ReadCloser, storage.ObjectInfo, error) {
	if err := f.before(ctx, "get", key); err != nil {
		return nil, storage.ObjectInfo{}, err
	}
	return f.Store.Get(ctx, key)
}

// Delete runs the hook, then deletes.
func (f *FaultyStore) Delete(ctx context.Context, key string) error {
	if err := f.before(ctx, "delete", key); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}

// Cards collects the ids of cards RandomChange created; safe for concurrent writers.
type Cards struct {
	mu  sync.Mutex
	ids []int64
}

func (c *Cards) add(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, id)
}

func (c *Cards) pick(r *rand.Rand) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ids) == 0 {
		return 0, false
	}
	return c.ids[r.IntN(len(c.ids))], true
}

// RandomChange makes one random write among profiles and cards, with its outbox bumps in the
// same transaction, as the write paths do: relations of every status and their removal, cards,
// subscriptions, profile edits, soft deletes and locks.
func (w *World) RandomChange(ctx context.Context, r *rand.Rand, profiles []int64, cards *Cards) error {
	pick := func() int64 { return profiles[r.IntN(len(profiles))] }
	pickCard := func() (int64, bool) { return cards.pick(r) }
	write := func(fn func(ctx context.Context, tx *outbox.Tx) error) error { return w.TryWrite(ctx, fn) }
	exec := func(profileIDs, cardIDs []int64, query string, args ...any) error {
		return write(func(ctx context.Context, tx *outbox.Tx) error {
			if _, err := tx.Raw.Exec(ctx, query, args...); err != nil {
				return err
			}
			if len(cardIDs) > 0 {
				if err := tx.CardsChanged(ctx, cardIDs...); err != nil {
					return err
				}
			}
			if len(profileIDs) > 0 {
				return tx.ProfilesChanged(ctx, profileIDs...)
			}
			return nil
		})
	}
	var err error
	switch r.IntN(10) {
	case 0, 1, 2:
		from, to := pick(), pick()
		status := 1 + r.IntN(4)
		err = write(func(ctx context.Context, tx *outbox.Tx) error {
			var same bool
			if err := tx.Raw.QueryRow(ctx, `SELECT (SELECT user_id FROM profiles WHERE id = $1) = (SELECT user_id FROM profiles WHERE id = $2)`, from, to).Scan(&same); err != nil || same {
				return err
			}
			return SetRelation(ctx, tx, from, to, status)
		})
	case 3:
		from, to := pick(), pick()
		err = write(func(ctx context.Context, tx *outbox.Tx) error { return Unrelate(ctx, tx, from, to) })
	case 4:
		p := pick()
		var id int64
		err = write(func(ctx context.Context, tx *outbox.Tx) error {
			var err error
			id, err = CreateCard(ctx, tx, p, r.IntN(2) == 0)
			return err
		})
		if err == nil {
			cards.add(id)
		}
	case 5:
		if c, ok := pickCard(); ok {
			p, on := pick(), r.IntN(3) > 0
			err = write(func(ctx context.Context, tx *outbox.Tx) error { return SetSubscription(ctx, tx, p, c, on) })
		}
	case 6:
		p := pick()
		data := fmt.Sprintf(`{"phone": {"index": 0, "value": {"m": {"index": %d, "value": "+82 %d"}}}}`, r.IntN(3), r.IntN(1000))
		err = exec([]int64{p}, nil, `UPDATE profiles SET data = $2, private = $3, version = version + 1, modified_at = now() WHERE id = $1`,
			p, data, r.IntN(2) == 0)
	case 7:
		if c, ok := pickCard(); ok {
			err = exec(nil, []int64{c}, `UPDATE cards SET deleted_at = CASE WHEN deleted_at IS NULL THEN now() END, name = 'c' || version, version = version + 1 WHERE id = $1`, c)
		}
	case 8:
		p := pick()
		err = exec([]int64{p}, nil, `UPDATE profiles SET locked_at = CASE WHEN locked_at IS NULL AND random() < 0.5 THEN now() END WHERE id = $1`, p)
	case 9:
		p := pick()
		err = exec([]int64{p}, nil, `UPDATE profiles SET deleted_at = CASE WHEN deleted_at IS NULL THEN now() END, version = version + 1 WHERE id = $1`, p)
	}
	return err
}
