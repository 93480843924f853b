// Package files stores uploaded images: the type is sniffed from the bytes and checked against an
// allow-list, the size limit is enforced while streaming, and nothing reaches the object store
// or the database before both checks pass.
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
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/bca"
	"github.com/bca-app/backend/internal/storage"
)

// allowed maps the sniffed content type to itself for the image types we accept.
var allowed = map[string]bool{"image/jpeg": true, "image/png": true, "image/webp": true, "image/gif": true}

// Service uploads and serves files.
type Service struct {
	q        *db.Queries
	store    storage.Store
	maxBytes int64
	log      *slog.Logger
}

// NewService returns a Service storing objects in store, refusing uploads above maxBytes.
func NewService(pool *pgxpool.Pool, store storage.Store, maxBytes int64, log *slog.Logger) *Service {
	return &Service{q: db.New(pool), store: store, maxBytes: maxBytes, log: log}
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
	br := bufio.NewReaderSize(&limitedReader{r: body, max: s.maxBytes}, 512)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return db.File{}, s.readError(err)
	}
	if len(head) == 0 {
		return db.File{}, bca.Invalid("file", "must not be empty")
	}
	contentType := http.DetectContentType(head)
	if !allowed[contentType] {
		return db.File{}, bca.E(bca.KindUnsupportedMediaType, "file.unsupported_type",
			"Only JPEG, PNG, WebP and GIF images are accepted.", bca.FieldError{Field: "file", Reason: "detected " + contentType})
	}
	key := "files/" + rand.Text()
	info, err := s.store.Put(ctx, key, br, contentType)
	if err != nil {
		return db.File{}, s.readError(err)
	}
	f, err := s.q.CreateFile(ctx, db.CreateFileParams{OwnerUserID: ownerUserID, StorageKey: key, ContentType: contentType, Size: info.Size, Md5: info.MD5})
	if err != nil {
		s.removeObject(ctx, key)
		return db.File{}, fmt.Errorf("record file: %w", err)
	}
	return f, nil
}

func (s *Service) readError(err error) error {
	if errors.Is(err, errTooLarge) {
		return bca.E(bca.KindTooLarge, "file.too_large", fmt.Sprintf("The file is larger than %d bytes.", s.maxBytes),
			bca.FieldError{Field: "file", Reason: "too large"})
	}
	return fmt.Errorf("store upload: %w", err)
}

// Owned returns a file of the owner, or not found.
func (s *Service) Owned(ctx context.Context, fileID, ownerUserID int64) (db.File, error) {
	f, err := s.q.GetOwnedFile(ctx, db.GetOwnedFileParams{ID: fileID, OwnerUserID: ownerUserID})
	if errors.Is(err, pgx.ErrNoRows) {
		return db.File{}, bca.NotFound("The file")
	}
	return f, err
}

// Download is how a file reaches the client: a stream, or a redirect URL.
type Download struct {
	File        db.File
	Body        io.ReadCloser
	RedirectURL string
}

// Open returns the file's bytes, or a presigned URL when the store can give one and redirects
// are preferred.
func (s *Service) Open(ctx context.Context, fileID int64, preferRedirect bool) (Download, error) {
	f, err := s.q.GetFile(ctx, fileID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Download{}, bca.NotFound("The file")
	}
	if err != nil {
		return Download{}, fmt.Errorf("load file %d: %w", fileID, err)
	}
	if preferRedirect {
		if url, ok, err := s.store.PresignGet(ctx, f.StorageKey, presignTTL); err != nil {
			return Download{}, err
		} else if ok {
			return Download{File: f, RedirectURL: url}, nil
		}
	}
	body, _, err := s.store.Get(ctx, f.StorageKey)
	if errors.Is(err, storage.ErrNotFound) {
		return Download{}, bca.NotFound("The file")
	}
	if err != nil {
		return Download{}, fmt.Errorf("open file %d: %w", fileID, err)
	}
	return Download{File: f, Body: body}, nil
}

// ReleaseAfterCommit removes the rows and objects of files nothing refers to any more. Call it
// after the transaction that dropped the references committed, so a rollback never leaves a
// row pointing at a deleted object.
func (s *Service) ReleaseAfterCommit(ctx context.Context, fileIDs ...int64) {
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
	if err := s.store.Delete(context.WithoutCancel(ctx), key); err != nil {
		s.log.WarnContext(ctx, "remove object", "key", key, "err", err)
	}
}

// presignTTL is how long a redirect URL stays valid: long enough to start a download.
const presignTTL = 5 * time.Minute

// URL is where the API serves a file: the image_url and preview_url of accounts, profiles, cards,
// chat images and sync file rows.
func URL(id int64) string { return "/api/v1/files/" + strconv.FormatInt(id, 10) }
