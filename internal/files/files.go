// Package files stores uploaded images: the type is sniffed from the bytes and checked against an
// allow-list, the size limit is enforced while streaming, and nothing reaches the object store
// or the database before both checks pass. Each account has an upload rate and a storage quota;
// uploads attached to nothing are swept after a while. A file is served only to those who may
// see what it belongs to (docs/product.md §7), under a random public id.
package files

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/storage"
)

// allowed maps the sniffed content type to itself for the image types we accept.
var allowed = map[string]bool{"image/jpeg": true, "image/png": true, "image/webp": true, "image/gif": true}

// Service uploads and serves files.
type Service struct {
	q        *db.Queries
	store    storage.Store
	maxBytes int64
	limits   Limits
	log      *slog.Logger
	now      func() time.Time
	// deleteTimeout bounds the removal of one object from the store.
	deleteTimeout time.Duration
}

// Limits bound what one account may upload.
type Limits struct {
	// Allow reports whether the account may upload once more now; when not, after how long it
	// may. Nil allows every upload.
	Allow func(ctx context.Context, userID int64) (bool, time.Duration, error)
	// QuotaBytes is what an account may keep stored; 0 means no quota.
	QuotaBytes int64
}

// Deps are the collaborators and limits of the Service.
type Deps struct {
	Pool  *pgxpool.Pool // required
	Store storage.Store // required: where the objects live
	Log   *slog.Logger  // required
	// MaxBytes refuses larger uploads; Limits bound what one account may upload.
	MaxBytes int64
	Limits   Limits
	// Now is the clock the service compares times with (the age of unused uploads); nil is
	// time.Now.
	Now func() time.Time
	// DeleteTimeout bounds the removal of one object from the store (default 10 s): a hung
	// store costs a release or a sweep that long per object, and the object stays behind.
	DeleteTimeout time.Duration
}

// New returns a Service storing objects in Store; it refuses missing required dependencies.
func New(d Deps) (*Service, error) {
	if err := domain.RequireDeps("files", map[string]any{"Pool": d.Pool, "Store": d.Store, "Log": d.Log}); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.DeleteTimeout <= 0 {
		d.DeleteTimeout = 10 * time.Second
	}
	return &Service{q: db.New(d.Pool), store: d.Store, maxBytes: d.MaxBytes, limits: d.Limits, log: d.Log, now: d.Now,
		deleteTimeout: d.DeleteTimeout}, nil
}

// ErrTooLarge is returned by the limited reader when the upload exceeds the limit.
var errTooLarge = errors.New("upload exceeds the size limit")

// limitedReader fails, instead of truncating, once more than max bytes were read.
type limitedReader struct {
	r   io.Reader
	max int64
	n   int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		return n, errTooLarge
	}
	return n, err
}

// Upload validates and stores one image owned by ownerUserID.
func (s *Service) Upload(ctx context.Context, ownerUserID int64, body io.Reader) (db.File, error) {
	if s.limits.Allow != nil {
		ok, retry, err := s.limits.Allow(ctx, ownerUserID)
		if err != nil {
			// The quota still bounds what an account can store while the limiter is away.
			s.log.WarnContext(ctx, "upload rate limit unavailable", "err", err)
		} else if !ok {
			e := domain.E(domain.KindRateLimited, "file.rate_limited", "Too many uploads; try again later.")
			e.RetryAfter = retry
			return db.File{}, e
		}
	}
	used := int64(0)
	if s.limits.QuotaBytes > 0 {
		var err error
		if used, err = s.q.FileUsageOfOwner(ctx, ownerUserID); err != nil {
			return db.File{}, fmt.Errorf("file usage: %w", err)
		}
		if used >= s.limits.QuotaBytes {
			return db.File{}, s.quotaError()
		}
	}
	br := bufio.NewReaderSize(&limitedReader{r: body, max: s.maxBytes}, 512)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return db.File{}, s.readError(err)
	}
	if len(head) == 0 {
		return db.File{}, domain.Invalid("file", "must not be empty")
	}
	contentType := http.DetectContentType(head)
	if !allowed[contentType] {
		return db.File{}, domain.E(domain.KindUnsupportedMediaType, "file.unsupported_type",
			"Only JPEG, PNG, WebP and GIF images are accepted.", domain.FieldError{Field: "file", Reason: "detected " + contentType})
	}
	key := "files/" + rand.Text()
	info, err := s.store.Put(ctx, key, br, contentType)
	if err != nil {
		return db.File{}, s.readError(err)
	}
	if s.limits.QuotaBytes > 0 && used+info.Size > s.limits.QuotaBytes {
		// Checked again with the real size; two uploads racing may both pass, by one file at most.
		s.removeObject(ctx, key)
		return db.File{}, s.quotaError()
	}
	f, err := s.q.CreateFile(ctx, db.CreateFileParams{OwnerUserID: ownerUserID, StorageKey: key, ContentType: contentType, Size: info.Size, Md5: info.MD5})
	if err != nil {
		s.removeObject(ctx, key)
		return db.File{}, fmt.Errorf("record file: %w", err)
	}
	return f, nil
}

func (s *Service) quotaError() error {
	return domain.E(domain.KindTooLarge, "file.quota_exceeded",
		fmt.Sprintf("Your uploads would take more than %d bytes; remove images you no longer use.", s.limits.QuotaBytes),
		domain.FieldError{Field: "file", Reason: "storage quota exceeded"})
}

func (s *Service) readError(err error) error {
	if errors.Is(err, errTooLarge) {
		return domain.E(domain.KindTooLarge, "file.too_large", fmt.Sprintf("The file is larger than %d bytes.", s.maxBytes),
			domain.FieldError{Field: "file", Reason: "too large"})
	}
	return fmt.Errorf("store upload: %w", err)
}

// Owned returns a file of the owner, or not found.
func (s *Service) Owned(ctx context.Context, fileID, ownerUserID int64) (db.File, error) {
	f, err := s.q.GetOwnedFile(ctx, db.GetOwnedFileParams{ID: fileID, OwnerUserID: ownerUserID})
	if errors.Is(err, pgx.ErrNoRows) {
		return db.File{}, domain.NotFound("The file")
	}
	return f, err
}

// Download is how a file reaches the client: a stream, or a redirect URL.
type Download struct {
	File        db.File
	Body        io.ReadCloser
	RedirectURL string
}

// Guard answers whether a viewer may see what a file belongs to; the profile and card services
// give the answers, so the file rule is the same rule as theirs (internal/access).
type Guard struct {
	CanSeeProfile func(ctx context.Context, v access.Caller, profileID int64) (bool, error)
	CanReadCard   func(ctx context.Context, v access.Caller, cardID int64) (bool, error)
}

// Open returns the file's bytes, or a presigned URL when the store can give one and redirects
// are preferred, if the viewer may read the file: its uploader; whoever may see a profile it is
// the image of (a redacted profile shows its image too) or read a card it is the preview of;
// a participant of a room it was posted in, for the events that participation may read.
// An account image is shown to its owner only, who is its uploader. Anyone else is told the
// file does not exist.
func (s *Service) Open(ctx context.Context, v access.Caller, publicID string, preferRedirect bool, g Guard) (Download, error) {
	row, err := s.q.GetFileForRead(ctx, db.GetFileForReadParams{PublicID: publicID, ViewerUserID: v.UserID})
	if errors.Is(err, pgx.ErrNoRows) {
		return Download{}, domain.NotFound("The file")
	}
	if err != nil {
		return Download{}, fmt.Errorf("load file: %w", err)
	}
	ok, err := mayRead(ctx, v, row, g)
	if err != nil {
		return Download{}, err
	}
	if !ok {
		return Download{}, domain.NotFound("The file")
	}
	f := db.File{ID: row.ID, OwnerUserID: row.OwnerUserID, StorageKey: row.StorageKey, ContentType: row.ContentType,
		Size: row.Size, Md5: row.Md5, CreatedAt: row.CreatedAt, PublicID: row.PublicID}
	return s.download(ctx, f, preferRedirect)
}

// OpenShared returns the bytes of a file that a live share link shows (the card's preview or
// its profile's image). The caller has checked the link; there is no viewer to check here.
func (s *Service) OpenShared(ctx context.Context, fileID int64) (Download, error) {
	f, err := s.q.GetFile(ctx, fileID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Download{}, domain.NotFound("The file")
	}
	if err != nil {
		return Download{}, fmt.Errorf("load file: %w", err)
	}
	return s.download(ctx, f, false)
}

// download opens a file whose reading is allowed: a presigned URL when preferred and possible,
// otherwise the bytes.
func (s *Service) download(ctx context.Context, f db.File, preferRedirect bool) (Download, error) {
	if preferRedirect {
		if url, ok, err := s.store.PresignGet(ctx, f.StorageKey, presignTTL); err != nil {
			return Download{}, err
		} else if ok {
			return Download{File: f, RedirectURL: url}, nil
		}
	}
	body, _, err := s.store.Get(ctx, f.StorageKey)
	if errors.Is(err, storage.ErrNotFound) {
		return Download{}, domain.NotFound("The file")
	}
	if err != nil {
		return Download{}, fmt.Errorf("open file %d: %w", f.ID, err)
	}
	return Download{File: f, Body: body}, nil
}

func mayRead(ctx context.Context, v access.Caller, row db.GetFileForReadRow, g Guard) (bool, error) {
	if row.OwnerUserID == v.UserID || row.InViewersChat {
		return true, nil
	}
	for _, id := range row.ProfileIds {
		if ok, err := g.CanSeeProfile(ctx, v, id); err != nil || ok {
			return ok, err
		}
	}
	for _, id := range row.CardIds {
		if ok, err := g.CanReadCard(ctx, v, id); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// Sweep removes uploads older than unusedFor that nothing refers to, from the database and the
// object store, and returns how many it removed. It works in bounded batches.
func (s *Service) Sweep(ctx context.Context, unusedFor time.Duration) (int, error) {
	removed := 0
	for range 100 {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		keys, err := s.q.DeleteUnattachedFiles(qctx, db.DeleteUnattachedFilesParams{Cutoff: s.now().Add(-unusedFor), MaxRows: 100})
		cancel()
		if err != nil {
			return removed, fmt.Errorf("sweep unused uploads: %w", err)
		}
		for _, key := range keys {
			s.removeObject(ctx, key)
		}
		removed += len(keys)
		if len(keys) < 100 {
			break
		}
	}
	return removed, nil
}

// RunSweeper sweeps every period until ctx ends.
func (s *Service) RunSweeper(ctx context.Context, period, unusedFor time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.Sweep(ctx, unusedFor)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "sweep unused uploads", "err", err)
		}
		if n > 0 {
			s.log.InfoContext(ctx, "removed unused uploads", "count", n)
		}
	}
}

// ReleaseAfterCommit removes the rows and objects of files nothing refers to any more. Call it
// after the transaction that dropped the references committed, so a rollback never leaves a
// row pointing at a deleted object.
//
// It goes on when the caller's context is cancelled (the caller has usually answered already),
// within releaseTimeout, and each object removal within DeleteTimeout.
func (s *Service) ReleaseAfterCommit(ctx context.Context, fileIDs ...int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	for _, id := range fileIDs {
		key, err := s.q.DeleteFileIfUnreferenced(ctx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // still used elsewhere
		}
		if err != nil {
			s.log.WarnContext(ctx, "release file", "file_id", id, "err", err)
			continue
		}
		s.removeObject(ctx, key)
	}
}

func (s *Service) removeObject(ctx context.Context, key string) {
	// It outlives the caller's cancellation (the row is gone already) but not for ever: a hung
	// store costs DeleteTimeout, and the object is left behind as an orphan.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.deleteTimeout)
	defer cancel()
	if err := s.store.Delete(dctx, key); err != nil {
		s.log.WarnContext(ctx, "remove object", "key", key, "err", err)
	}
}

// releaseTimeout bounds a whole ReleaseAfterCommit.
const releaseTimeout = 30 * time.Second

// presignTTL is how long a redirect URL stays valid: long enough to start a download.
const presignTTL = 5 * time.Minute

// URL is where the API serves a file: the image_url and preview_url of accounts, profiles, cards,
// chat images and sync file rows. The public id is random, so a URL tells nothing about other
// files.
func URL(publicID string) string { return "/api/v1/files/" + publicID }

// OptionalURL is URL of an optional file.
func OptionalURL(publicID *string) *string {
	if publicID == nil {
		return nil
	}
	u := URL(*publicID)
	return &u
}
