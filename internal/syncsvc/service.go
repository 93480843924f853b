// Package syncsvc keeps each user's sync file (docs/sync.md): it computes what the file holds from
// PostgreSQL, builds it (in full, or by updating the current file), stores it with a
// compare-and-set pointer switch, and answers the HTTP layer's reads. The worker (internal/worker)
// decides when to build; this package decides how.
//
// Correctness does not rest on the queue or the lock: a build reads wanted_version and the rows
// in one snapshot, so the file it produces holds every change up to that version, and the
// publish refuses any version older than the one already published. Duplicate, reordered or
// lost messages, a crashed builder or a Redis restart can only cost work or delay a file,
// never make it wrong or older.
package syncsvc

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/push"
	"github.com/bca-app/backend/internal/ratelimit"
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/txn"
)

// ContentType is the media type of a sync file.
const ContentType = "application/vnd.sqlite3"

// Deps are the adapters the service works with.
type Deps struct {
	Pool  *pgxpool.Pool
	Store storage.Store
	Redis redis.UniversalClient
	// KeyPrefix namespaces the service's Redis keys (config REDIS_KEY_PREFIX).
	KeyPrefix string
	Push      push.Sender
	// Limiter bounds rebuilds on request; nil leaves them unlimited.
	Limiter *ratelimit.Limiter
	Metrics *Metrics
	Log     *slog.Logger
	// Settings tune the service (DefaultSettings with the configured values).
	Settings Settings
	// Now is the clock the service compares times with (the lock's lease, retry times); nil is
	// time.Now. Times kept in PostgreSQL are compared by the database's clock.
	Now func() time.Time
}

// Settings tune the service; DefaultSettings are the production values.
type Settings struct {
	// LockTTL is how long a builder's lock lives without renewal: the delay before a crashed
	// builder's user can be built again. It is renewed every third of it.
	LockTTL time.Duration
	// LockWait is how long a request that must build (no file yet, rebuild) waits for a
	// builder that holds the lock.
	LockWait time.Duration
	// SyncLockWait is how long a worker's Sync waits for the lock before answering ErrBusy:
	// long enough for a builder that has just published to release it, short enough not to
	// tie up a worker behind a long build.
	SyncLockWait time.Duration
	// BuildTimeout bounds one build: a worker's (Sync), and one done for a request, which goes
	// on if the client leaves, so the work is not wasted.
	BuildTimeout time.Duration
	// Incremental updates a copy of the current file instead of building from scratch when the
	// current file was written by this builder. Both give the same rows.
	Incremental bool
	// TempDir holds files while they are built ("" = the system's).
	TempDir string
	// ReplacedGrace keeps a replaced file in storage, so a download or presigned URL handed out
	// just before the switch still works.
	ReplacedGrace time.Duration
	// UploadGrace is after how long an uploaded file that never got published (its builder
	// died) is deleted.
	UploadGrace time.Duration
	// RebuildsPerMinute limits POST /sync/rebuild per user.
	RebuildsPerMinute int
	// Redirect answers downloads with a presigned URL when the store can give one.
	Redirect   bool
	PresignTTL time.Duration
}

// DefaultSettings are the production settings.
func DefaultSettings() Settings {
	return Settings{
		LockTTL:           30 * time.Second,
		LockWait:          15 * time.Second,
		SyncLockWait:      300 * time.Millisecond,
		BuildTimeout:      2 * time.Minute,
		Incremental:       true,
		ReplacedGrace:     10 * time.Minute,
		UploadGrace:       time.Hour,
		RebuildsPerMinute: 6,
		PresignTTL:        5 * time.Minute,
	}
}

// Service builds, stores and serves sync files.
type Service struct {
	pool    *pgxpool.Pool
	q       *db.Queries
	store   storage.Store
	locks   *locker
	push    push.Sender
	limiter *ratelimit.Limiter
	metrics *Metrics
	log     *slog.Logger
	set     Settings
	// rdb and prefix hold the cached sync state of the poll (cache.go).
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time
}

// New returns a Service.
func New(d Deps) (*Service, error) {
	if err := domain.RequireDeps("syncsvc", map[string]any{
		"Pool": d.Pool, "Store": d.Store, "Redis": d.Redis, "Metrics": d.Metrics, "Log": d.Log,
	}); err != nil {
		return nil, err
	}
	s := d.Settings
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{
		pool: d.Pool, q: db.New(d.Pool), store: d.Store, push: d.Push, limiter: d.Limiter,
		locks:   &locker{rdb: d.Redis, prefix: d.KeyPrefix, ttl: s.LockTTL, now: d.Now},
		metrics: d.Metrics, log: d.Log, set: s, rdb: d.Redis, prefix: d.KeyPrefix, now: d.Now,
	}, nil
}

// Settings returns the service's settings.
func (s *Service) Settings() Settings { return s.set }

// Metrics returns the service's metrics (the worker reports through them too).
func (s *Service) Metrics() *Metrics { return s.metrics }

// Outcome is what one build attempt did.
type Outcome string

// Outcomes, also the values of the builds metric's label.
const (
	Published  Outcome = "published"  // a new file is live
	Unchanged  Outcome = "unchanged"  // the new build had the same bytes; the version was recorded
	Skipped    Outcome = "skipped"    // nothing was owed
	Superseded Outcome = "superseded" // someone published this version or a newer one first
	Busy       Outcome = "busy"       // another builder holds the user
	Failed     Outcome = "failed"
)

// Result describes one build attempt.
type Result struct {
	Outcome Outcome
	Version int64
	ETag    string
	Mode    string // "full" or "incremental"
	// Behind says the user's file is still owed a newer version after this attempt: changes
	// committed while it built (or, when it was superseded, possibly so). The task that asked
	// for the build stands for those changes too (docs/sync.md §4.2), so whoever holds it builds
	// again or hands it on.
	Behind bool
}

// Sync brings userID's file up to the user's current wanted_version, if it is behind: the
// worker's step for one message or claim (docs/sync.md §4.3). It takes the user's lock, waiting at
// most SyncLockWait (ErrBusy when another builder keeps it), holds it while working, and returns Skipped
// when the published file is already current. ctx is the worker's: cancelling it abandons the
// build as a crash would, leaving the lock to expire.
func (s *Service) Sync(ctx context.Context, userID int64) (Result, error) {
	lock, err := s.locks.acquire(ctx, userID, s.set.SyncLockWait)
	if errors.Is(err, ErrBusy) {
		s.count(Busy)
		return Result{Outcome: Busy}, err
	}
	if err != nil {
		s.count(Failed)
		return Result{Outcome: Failed}, err
	}
	// A hung PostgreSQL or S3 costs the build BuildTimeout; it then fails like any other
	// failure, and the lock is released on ctx.
	bctx, cancel := context.WithTimeout(ctx, s.set.BuildTimeout)
	defer cancel()
	lctx := lock.hold(bctx)
	defer func() {
		if err := lock.release(ctx); err != nil && (ctx.Err() == nil || errors.Is(context.Cause(ctx), ErrStopping)) {
			s.log.WarnContext(ctx, "release sync lock", "user_id", userID, "err", err)
		}
	}()
	st, err := s.q.GetSyncState(lctx, userID)
	if errors.Is(err, pgx.ErrNoRows) {
		// Nothing was ever owed; the first request builds the first file.
		s.count(Skipped)
		return Result{Outcome: Skipped}, nil
	}
	if err != nil {
		return s.failed(lctx, fmt.Errorf("read sync state of user %d: %w", userID, err))
	}
	if st.BuiltVersion >= st.WantedVersion && st.StorageKey != nil {
		s.count(Skipped)
		return Result{Outcome: Skipped, Version: st.BuiltVersion, ETag: valueOr(st.Etag, "")}, nil
	}
	res, err := s.build(lctx, st, false)
	if err != nil {
		return s.failed(lctx, err)
	}
	return res, nil
}

// failed counts a failed build and turns a cancellation caused by losing the lock into
// ErrLockLost.
func (s *Service) failed(lctx context.Context, err error) (Result, error) {
	if cause := context.Cause(lctx); errors.Is(cause, ErrLockLost) {
		err = fmt.Errorf("%w (%w)", cause, err)
	}
	s.count(Failed)
	return Result{Outcome: Failed}, err
}

func (s *Service) count(o Outcome) { s.metrics.Builds.WithLabelValues(string(o)).Inc() }

// build writes the file of the snapshot it takes and publishes it. st is the state read under
// the lock: the current file (for an incremental update) and the pointer the publish compares.
// force builds from scratch and stores a new object even when the bytes come out the same.
func (s *Service) build(ctx context.Context, st db.SyncState, force bool) (Result, error) {
	start := time.Now()
	userID := st.UserID
	snap, err := s.Snapshot(ctx, userID)
	if err != nil {
		return Result{}, err
	}
	dir, err := os.MkdirTemp(s.set.TempDir, "bca-sync-*")
	if err != nil {
		return Result{}, fmt.Errorf("build sync file of user %d: temp dir: %w", userID, err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sync.sqlite")

	mode := "full"
	if s.set.Incremental && !force && st.StorageKey != nil && st.Etag != nil &&
		st.BuilderSchema != nil && *st.BuilderSchema == syncfile.SchemaVersion {
		if err := s.updateCopy(ctx, *st.StorageKey, *st.Etag, path, snap.Contents); err != nil {
			if ctx.Err() != nil {
				return Result{}, err
			}
			s.log.WarnContext(ctx, "incremental sync update failed; building in full", "user_id", userID, "err", err)
		} else {
			mode = "incremental"
		}
	}
	if mode == "full" {
		if err := syncfile.Build(ctx, path, snap.Contents); err != nil {
			return Result{}, fmt.Errorf("build sync file of user %d: %w", userID, err)
		}
	}
	sum, size, err := syncfile.MD5File(path)
	if err != nil {
		return Result{}, err
	}

	if !force && st.StorageKey != nil && st.Etag != nil && *st.Etag == sum {
		// Same bytes as the live file: only record that it now stands for this version.
		ok, lag, wanted, err := s.publish(ctx, st, snap, sum, size, *st.StorageKey, false)
		if err != nil {
			return Result{}, err
		}
		if ok && lag >= 0 {
			s.observeLag(ctx, lag)
		}
		return s.finish(start, mode, ok, Unchanged, snap.Version, sum, wanted), nil
	}

	key := objectKey(userID, snap.Version)
	// Recorded before the upload: if this builder dies between upload and publish, the
	// sweeper deletes the orphan when the entry expires.
	if err := s.q.AddSyncGarbage(ctx, db.AddSyncGarbageParams{StorageKey: key, AfterMs: s.set.UploadGrace.Milliseconds()}); err != nil {
		return Result{}, fmt.Errorf("record upload of %s: %w", key, err)
	}
	if err := s.upload(ctx, key, path, sum); err != nil {
		return Result{}, err
	}
	ok, lag, wanted, err := s.publish(ctx, st, snap, sum, size, key, true)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		s.discard(ctx, key)
		return s.finish(start, mode, false, Published, snap.Version, sum, wanted), nil
	}
	s.metrics.FileBytes.Observe(float64(size))
	if lag >= 0 {
		s.observeLag(ctx, lag)
	}
	if st.Etag == nil || *st.Etag != sum {
		s.announce(ctx, userID, sum)
	}
	return s.finish(start, mode, true, Published, snap.Version, sum, wanted), nil
}

// finish counts the attempt and describes it; wanted is the wanted version the publish saw. A
// superseded attempt says Behind: it cannot tell whether the winner left the file current.
func (s *Service) finish(start time.Time, mode string, won bool, outcome Outcome, version int64, sum string, wanted int64) Result {
	if !won {
		outcome = Superseded
	}
	s.count(outcome)
	s.metrics.BuildSeconds.WithLabelValues(mode).Observe(time.Since(start).Seconds())
	return Result{Outcome: outcome, Version: version, ETag: sum, Mode: mode, Behind: !won || wanted > version}
}

// updateCopy downloads the current file to path, checks that its bytes are the ones published
// (etag), and updates it to c in one SQLite transaction.
func (s *Service) updateCopy(ctx context.Context, key, etag, path string, c syncfile.Contents) (err error) {
	defer func() {
		if err != nil {
			os.Remove(path)
			os.Remove(path + "-journal")
		}
	}()
	body, _, err := s.store.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("download %s: %w", key, err)
	}
	defer body.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	h := md5.New()
	_, err = io.Copy(io.MultiWriter(f, h), body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != etag {
		return fmt.Errorf("download %s: MD5 %s, published %s", key, got, etag)
	}
	if _, err := syncfile.Update(ctx, path, c); err != nil {
		return err
	}
	return nil
}

func (s *Service) upload(ctx context.Context, key, path, sum string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	defer f.Close()
	info, err := s.store.Put(ctx, key, f, ContentType)
	if err != nil {
		return fmt.Errorf("upload sync file: %w", err)
	}
	if info.MD5 != sum {
		return fmt.Errorf("upload %s: store computed MD5 %s, file has %s", key, info.MD5, sum)
	}
	return nil
}

// publish switches the user's pointer to key with a compare-and-set (queries/sync.sql
// PublishSyncFile). ok is false when a newer file was published first. A replaced object is
// scheduled for deletion after the grace period, in the same transaction, so nothing leaks or
// disappears early whatever happens next. lag is -1 when the file was not behind; wanted is the
// user's wanted version at the switch (changes committed during the build make it newer).
func (s *Service) publish(ctx context.Context, st db.SyncState, snap Snapshot, sum string, size int64, key string, newObject bool) (ok bool, lag float64, wanted int64, err error) {
	schema := int32(syncfile.SchemaVersion)
	err = txn.Do(ctx, s.pool, func(tx *txn.Tx) error {
		q := tx.Q
		row, err := q.PublishSyncFile(ctx, db.PublishSyncFileParams{
			UserID: st.UserID, Version: snap.Version, Etag: &sum, Size: &size, StorageKey: &key,
			BuilderSchema: &schema, SnapshotAt: snap.At, ExpectedKey: st.StorageKey,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		ok, lag, wanted = true, row.LagSeconds, row.WantedVersion
		if row.OldKey != nil && *row.OldKey != key {
			if err := q.AddSyncGarbage(ctx, db.AddSyncGarbageParams{StorageKey: *row.OldKey, AfterMs: s.set.ReplacedGrace.Milliseconds()}); err != nil {
				return fmt.Errorf("schedule deletion of %s: %w", *row.OldKey, err)
			}
		}
		if newObject {
			if err := q.RemoveSyncGarbage(ctx, key); err != nil {
				return fmt.Errorf("keep %s: %w", key, err)
			}
		}
		return nil
	})
	if err != nil {
		return false, 0, 0, fmt.Errorf("publish sync file of user %d version %d: %w", st.UserID, snap.Version, err)
	}
	if ok {
		s.ForgetState(ctx, st.UserID)
	}
	return ok, lag, wanted, nil
}

// discard deletes an uploaded object that lost the publish; if that fails, its garbage entry
// still collects it later.
func (s *Service) discard(ctx context.Context, key string) {
	if err := s.store.Delete(ctx, key); err != nil {
		s.log.WarnContext(ctx, "delete superseded sync file", "key", key, "err", err)
		return
	}
	if err := s.q.RemoveSyncGarbage(ctx, key); err != nil {
		s.log.WarnContext(ctx, "forget superseded sync file", "key", key, "err", err)
	}
}

// announce tells the user's devices that a new file is there (docs/sync.md §4.3). The etag is the
// file's MD5 as plain lowercase hex, what the app compares with its local copy.
func (s *Service) announce(ctx context.Context, userID int64, sum string) {
	s.push.SendToUsers(context.WithoutCancel(ctx), []int64{userID}, 0, push.Message{
		Data: map[string]string{"type": "sync", "etag": sum},
	})
}

// objectKey is where one build of a user's file is stored. Every build gets a new key, so an
// object never changes once written and readers holding an old pointer read a whole old file.
func objectKey(userID, version int64) string {
	return "sync/" + strconv.FormatInt(userID, 10) + "/" + strconv.FormatInt(version, 10) + "-" +
		strings.ToLower(rand.Text()[:12]) + ".sqlite"
}

// File is a published sync file as the HTTP layer sees it.
type File struct {
	UserID int64
	// ETag is the lowercase hex MD5 of the file's bytes, computed when it was written.
	ETag string
	Size int64
	Key  string
	// Pending says a newer build is already owed (built_version < wanted_version).
	Pending bool
}

func fileOf(st db.SyncState) File {
	return File{
		UserID: st.UserID, ETag: valueOr(st.Etag, ""), Size: valueOr(st.Size, 0), Key: valueOr(st.StorageKey, ""),
		Pending: st.BuiltVersion < st.WantedVersion,
	}
}

// Current returns the user's published file from the stored state, without touching storage.
// A user who has no file yet gets one built on the spot.
func (s *Service) Current(ctx context.Context, userID int64) (File, error) {
	st, err := s.q.GetSyncState(ctx, userID)
	if err == nil && st.StorageKey != nil {
		return fileOf(st), nil
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return File{}, fmt.Errorf("read sync state of user %d: %w", userID, err)
	}
	return s.buildOnRequest(ctx, userID, false)
}

// Rebuild discards the user's file and builds it from scratch now (POST /sync/rebuild),
// within the per-user rate limit.
func (s *Service) Rebuild(ctx context.Context, userID int64) (File, error) {
	if s.limiter != nil {
		ok, retry, err := s.limiter.Allow(ctx, "sync-rebuild:"+strconv.FormatInt(userID, 10), s.set.RebuildsPerMinute, time.Minute)
		if err != nil {
			s.log.WarnContext(ctx, "rebuild rate limit unavailable; counting in process", "err", err)
		}
		if !ok {
			return File{}, domain.RateLimited(retry)
		}
	}
	return s.buildOnRequest(ctx, userID, true)
}

// buildOnRequest builds under the user's lock for a request, waiting a while for a builder
// that holds it. Unless forced, a file that appeared meanwhile is returned as is.
func (s *Service) buildOnRequest(ctx context.Context, userID int64, force bool) (File, error) {
	if err := s.q.EnsureSyncState(ctx, userID); err != nil {
		return File{}, fmt.Errorf("create sync state of user %d: %w", userID, err)
	}
	lock, err := s.locks.acquire(ctx, userID, s.set.LockWait)
	if errors.Is(err, ErrBusy) {
		e := domain.E(domain.KindUnavailable, "sync.busy", "Your sync file is being built; try again shortly.")
		e.RetryAfter = time.Second
		return File{}, e
	}
	if err != nil {
		return File{}, err
	}
	// The build goes on if the client leaves: the file will be wanted again.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.set.BuildTimeout)
	defer cancel()
	lctx := lock.hold(bctx)
	defer func() {
		if err := lock.release(bctx); err != nil {
			s.log.WarnContext(ctx, "release sync lock", "user_id", userID, "err", err)
		}
	}()
	st, err := s.q.GetSyncState(lctx, userID)
	if err != nil {
		return File{}, fmt.Errorf("read sync state of user %d: %w", userID, err)
	}
	if !force && st.StorageKey != nil {
		return fileOf(st), nil
	}
	if _, err := s.build(lctx, st, force); err != nil {
		_, err = s.failed(lctx, err)
		return File{}, err
	}
	st, err = s.q.GetSyncState(lctx, userID)
	if err != nil {
		return File{}, fmt.Errorf("read sync state of user %d: %w", userID, err)
	}
	if st.StorageKey == nil {
		return File{}, fmt.Errorf("sync file of user %d: no file after building", userID)
	}
	return fileOf(st), nil
}

// Download is how a file reaches the client: a stream, or a presigned URL.
type Download struct {
	File        File
	Body        io.ReadCloser
	RedirectURL string
}

// Open returns f's bytes, or a presigned URL when redirects are configured and the store can
// sign. If f's object has gone (its pointer moved on long ago), the current file is served
// instead; the returned File says which one.
func (s *Service) Open(ctx context.Context, f File) (Download, error) {
	for attempt := 0; ; attempt++ {
		if s.set.Redirect {
			url, ok, err := s.store.PresignGet(ctx, f.Key, s.set.PresignTTL)
			if err != nil {
				return Download{}, fmt.Errorf("presign sync file: %w", err)
			}
			if ok {
				return Download{File: f, RedirectURL: url}, nil
			}
		}
		body, _, err := s.store.Get(ctx, f.Key)
		if err == nil {
			return Download{File: f, Body: body}, nil
		}
		if !errors.Is(err, storage.ErrNotFound) || attempt > 0 {
			return Download{}, fmt.Errorf("open sync file: %w", err)
		}
		st, serr := s.q.GetSyncState(ctx, f.UserID)
		if serr != nil {
			return Download{}, fmt.Errorf("read sync state of user %d: %w", f.UserID, serr)
		}
		if st.StorageKey != nil && *st.StorageKey != f.Key {
			f = fileOf(st)
			continue
		}
		// The live pointer names a missing object: the store lost it. Build it again.
		s.log.ErrorContext(ctx, "published sync file is missing from storage; rebuilding", "user_id", f.UserID, "key", f.Key)
		if f, err = s.buildOnRequest(ctx, f.UserID, true); err != nil {
			return Download{}, err
		}
	}
}
