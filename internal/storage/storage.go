// Package storage keeps objects — built sync files and uploaded images — in
// a directory (local development, single-node installs) or in S3.
//
// Both backends implement Store with the same guarantees, checked by one
// conformance test: writes are atomic, every object carries the MD5 of its
// bytes as computed by us while streaming (S3 ETags are not MD5s for
// multipart or encrypted objects), and reads stream.
package storage

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key         string
	Size        int64
	MD5         string // lowercase hex MD5 of the object's bytes
	ContentType string
	ModTime     time.Time
}

// Store is an object store.
type Store interface {
	// Put stores the bytes read from r under key, replacing any object there.
	// It is atomic: readers see the old object or the whole new one, never a
	// part; if reading r fails, the old object is left as it was.
	Put(ctx context.Context, key string, r io.Reader, contentType string) (ObjectInfo, error)
	// Get streams the object at key; the caller closes the reader. Missing
	// keys give an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	// Head describes the object at key without reading it. Missing keys give
	// an error wrapping ErrNotFound.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// Delete removes the object at key; deleting a missing key succeeds, so
	// retried deletes are safe.
	Delete(ctx context.Context, key string) error
	// PresignGet returns a URL from which anyone may GET the object for ttl,
	// so clients can download large files without going through the API.
	// ok is false when the backend cannot presign (a local directory); the
	// caller then serves the object itself.
	PresignGet(ctx context.Context, key string, ttl time.Duration) (url string, ok bool, err error)
}

// ErrNotFound is wrapped by the errors of Get and Head for missing keys.
var ErrNotFound = errors.New("object not found")

// ErrInvalidKey is wrapped by the errors for keys that ValidateKey rejects.
var ErrInvalidKey = errors.New("invalid object key")

// maxKeyLen is S3's limit on key length, in bytes.
const maxKeyLen = 1024

// ValidateKey checks that key is a relative slash-separated path whose
// segments are non-empty and do not begin with a dot. Both backends apply
// the same rules so that keys valid in development are valid in production:
// they keep keys inside the local directory (no "..", no absolute paths) and
// leave dot-names free for the local backend's temporary files.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > maxKeyLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, maxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: %q is not UTF-8", ErrInvalidKey, key)
	case strings.ContainsAny(key, "\x00\\"):
		return fmt.Errorf("%w: %q contains NUL or a backslash", ErrInvalidKey, key)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("%w: %q is absolute", ErrInvalidKey, key)
	}
	for segment := range strings.SplitSeq(key, "/") {
		if segment == "" {
			return fmt.Errorf("%w: %q has an empty path segment", ErrInvalidKey, key)
		}
		if strings.HasPrefix(segment, ".") {
			return fmt.Errorf("%w: %q has a path segment beginning with a dot", ErrInvalidKey, key)
		}
	}
	return nil
}

// hashingReader computes the MD5 and length of what is read through it, and
// stops with the context's error once ctx is done, so a Put from a slow or
// endless reader can be cancelled.
type hashingReader struct {
	ctx context.Context
	r   io.Reader
	md5 hash.Hash
	n   int64
}

func newHashingReader(ctx context.Context, r io.Reader) *hashingReader {
	return &hashingReader{ctx: ctx, r: r, md5: md5.New()}
}

func (h *hashingReader) Read(p []byte) (int, error) {
	if err := h.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := h.r.Read(p)
	h.md5.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// sum is the lowercase hex MD5 of everything read so far.
func (h *hashingReader) sum() string { return hex.EncodeToString(h.md5.Sum(nil)) }

// defaultContentType is what objects stored without a content type get,
// in both backends, matching what HTTP assumes for unknown bytes.
func defaultContentType(contentType string) string {
	if contentType == "" {
		return "application/octet-stream"
	}
	return contentType
}
