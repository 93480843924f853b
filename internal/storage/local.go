package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bca-app/backend/internal/memo"
)

// Local stores each object as one file under a directory.
//
// A file holds the object's bytes followed by a trailer with its MD5 and
// content type, so that data and metadata are replaced together by a single
// rename: with a separate metadata file a reader could pair the new MD5 with
// the old bytes. Head reads only the trailer, and a store reads a file's trailer
// once (see fileIdentity).
//
// Unlike S3, a key cannot be both an object and a prefix of other keys
// ("a" and "a/b"): the second Put fails. Our keys never do that.
//
// Layout of a file:
//
//	bytes | trailer JSON | uint32 big-endian length of the JSON | trailerMagic
type Local struct {
	root  string
	infos *memo.Map[fileIdentity, ObjectInfo] // trailers read before, by the file they are in
}

// fileIdentity names the content of one object file: the device and inode it lives in, its size
// and its modification time. Put never writes into an existing file; it renames a new one into
// place, so another object under the same key is another inode (and a reused inode number has
// another modification time). A trailer read once is therefore good for as long as the
// identity matches.
type fileIdentity struct {
	dev, ino    uint64
	size, mtime int64
}

// memoInfos is how many trailers a store keeps (about 200 bytes each).
const memoInfos = 4096

var _ Store = (*Local)(nil)

// trailerMagic ends every object file; it identifies the format and version.
const trailerMagic = "BCAOBJ1\n"

// maxTrailerLen bounds the trailer so a corrupt length cannot make Head
// allocate an arbitrary amount.
const maxTrailerLen = 64 << 10

// trailerReadAhead is how much of a file's end readInfo reads at once.
const trailerReadAhead = 512

// trailer is the metadata stored after an object's bytes.
type trailer struct {
	Size        int64  `json:"size"`
	MD5         string `json:"md5"`
	ContentType string `json:"contentType"`
}

// NewLocal returns a store keeping objects under dir, which it creates if
// needed.
func NewLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local storage %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("local storage: create %s: %w", abs, err)
	}
	return &Local{root: abs, infos: memo.New[fileIdentity, ObjectInfo](memoInfos)}, nil
}

// Put writes the object to a temporary file next to its final name, syncs
// it and renames it into place, so readers and crashes see the old object
// or the new one.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, contentType string) (ObjectInfo, error) {
	path, err := l.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	// Dot-names are never valid keys (ValidateKey), so this cannot clash.
	tmp, err := os.CreateTemp(dir, ".put-*")
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	info, err := writeObjectFile(ctx, tmp, r, contentType)
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	info.Key = key
	return info, nil
}

// writeObjectFile writes the bytes and trailer to f, syncs and closes it.
func writeObjectFile(ctx context.Context, f *os.File, r io.Reader, contentType string) (ObjectInfo, error) {
	src := newHashingReader(ctx, r)
	if _, err := io.Copy(f, src); err != nil {
		return ObjectInfo{}, fmt.Errorf("write: %w", err)
	}
	contentType = defaultContentType(contentType)
	meta := trailer{Size: src.n, MD5: src.sum(), ContentType: contentType}
	if err := writeTrailer(f, meta); err != nil {
		return ObjectInfo{}, err
	}
	if err := f.Sync(); err != nil {
		return ObjectInfo{}, fmt.Errorf("sync: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat: %w", err)
	}
	if err := f.Close(); err != nil {
		return ObjectInfo{}, fmt.Errorf("close: %w", err)
	}
	return ObjectInfo{Size: meta.Size, MD5: meta.MD5, ContentType: contentType, ModTime: fi.ModTime()}, nil
}

func writeTrailer(w io.Writer, meta trailer) error {
	body, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("encode trailer: %w", err)
	}
	buf := binary.BigEndian.AppendUint32(body, uint32(len(body)))
	buf = append(buf, trailerMagic...)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write trailer: %w", err)
	}
	return nil
}

// Get opens the object's file and streams its bytes. The open file keeps
// the object readable even if it is replaced or deleted meanwhile.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	f, info, err := l.open(key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	return &fileBody{f: f, r: io.LimitedReader{R: f, N: info.Size}}, info, nil
}

// fileBody is an object's bytes (the file without its trailer). Its WriteTo hands the writer an
// *io.LimitedReader of the *os.File itself, which is what lets an HTTP response send it with
// sendfile(2), without copying it through user space.
type fileBody struct {
	f *os.File
	r io.LimitedReader
}

func (b *fileBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *fileBody) WriteTo(w io.Writer) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(&b.r)
	}
	return io.Copy(w, struct{ io.Reader }{&b.r})
}

func (b *fileBody) Close() error { return b.f.Close() }

// Head reads only the trailer of the object's file.
func (l *Local) Head(ctx context.Context, key string) (ObjectInfo, error) {
	f, info, err := l.open(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	f.Close()
	return info, nil
}

// Delete removes the object's file. Directories left empty stay; they are
// harmless and removing them would race with a concurrent Put.
func (l *Local) Delete(ctx context.Context, key string) error {
	path, err := l.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// PresignGet reports that a directory cannot hand out URLs.
func (l *Local) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	if _, err := l.path(key); err != nil {
		return "", false, err
	}
	return "", false, nil
}

// path maps a valid key to its file.
func (l *Local) path(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(key)), nil
}

// open opens the object's file and reads its trailer.
func (l *Local) open(key string) (*os.File, ObjectInfo, error) {
	path, err := l.path(key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	f, err := openRegular(path)
	if err != nil {
		// ENOTDIR: a prefix of the key is an object, so the key is not.
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, ObjectInfo{}, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return nil, ObjectInfo{}, fmt.Errorf("open %s: %w", key, err)
	}
	info, err := l.readInfo(f)
	if err != nil {
		f.Close()
		return nil, ObjectInfo{}, fmt.Errorf("%s: %w", key, err)
	}
	info.Key = key
	return f, info, nil
}

// readInfo reads the trailer at the end of an object file, or, for a file whose trailer it
// read before (same fileIdentity), returns what it read then.
func (l *Local) readInfo(f *os.File) (ObjectInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return ObjectInfo{}, err
	}
	if fi.IsDir() { // a key that is only a prefix of other keys
		return ObjectInfo{}, ErrNotFound
	}
	id, known := identity(fi)
	if known {
		if info, ok := l.infos.Get(id); ok {
			return info, nil
		}
	}
	info, err := readTrailer(f, fi)
	if err == nil && known {
		l.infos.Put(id, info)
	}
	return info, err
}

// readTrailer reads and checks the trailer of f, whose file information is fi.
func readTrailer(f *os.File, fi fs.FileInfo) (ObjectInfo, error) {
	const fixed = int64(4 + len(trailerMagic))
	size := fi.Size()
	if size < fixed {
		return ObjectInfo{}, errors.New("not an object file: too short")
	}
	// One read of the file's end usually holds the whole trailer (a few hundred bytes); a longer
	// one costs a second read.
	tail := make([]byte, min(size, trailerReadAhead))
	if _, err := f.ReadAt(tail, size-int64(len(tail))); err != nil {
		return ObjectInfo{}, fmt.Errorf("read trailer: %w", err)
	}
	suffix := tail[len(tail)-int(fixed):]
	if string(suffix[4:]) != trailerMagic {
		return ObjectInfo{}, errors.New("not an object file: bad magic")
	}
	n := int64(binary.BigEndian.Uint32(suffix[:4]))
	if n > maxTrailerLen || n > size-fixed {
		return ObjectInfo{}, fmt.Errorf("not an object file: trailer length %d", n)
	}
	var body []byte
	if n <= int64(len(tail))-fixed {
		body = tail[int64(len(tail))-fixed-n : int64(len(tail))-fixed]
	} else {
		body = make([]byte, n)
		if _, err := f.ReadAt(body, size-fixed-n); err != nil {
			return ObjectInfo{}, fmt.Errorf("read trailer: %w", err)
		}
	}
	var meta trailer
	if err := json.Unmarshal(body, &meta); err != nil {
		return ObjectInfo{}, fmt.Errorf("decode trailer: %w", err)
	}
	if meta.Size != size-fixed-n {
		return ObjectInfo{}, fmt.Errorf("corrupt object file: trailer says %d bytes, file holds %d", meta.Size, size-fixed-n)
	}
	return ObjectInfo{Size: meta.Size, MD5: meta.MD5, ContentType: meta.ContentType, ModTime: fi.ModTime()}, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Check is the store's readiness: its directory still exists and is a directory.
func (l *Local) Check(context.Context) error {
	st, err := os.Stat(l.root)
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("directory: %s is not a directory", l.root)
	}
	return nil
}
