package storage_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/testenv"
)

// TestMain starts moto (only moto: testenv starts services on first use)
// for the S3 backend.
func TestMain(m *testing.M) { testenv.Main(m) }

// backend makes an empty store of one kind for a test.
type backend struct {
	name       string
	open       func(t *testing.T) storage.Store
	canPresign bool
}

var backends = []backend{
	{name: "local", open: openLocal},
	{name: "s3", open: openS3, canPresign: true},
}

func openLocal(t *testing.T) storage.Store {
	s, err := storage.NewLocal(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openS3 gives each test a bucket of its own, so parallel tests cannot see
// each other's objects.
func openS3(t *testing.T) storage.Store {
	s, err := storage.NewS3(t.Context(), storage.S3Config{
		Bucket:          testenv.UniqueName("storage"),
		Region:          "us-east-1",
		EndpointURL:     testenv.AWSEndpoint(t),
		UsePathStyle:    true,
		AccessKeyID:     "test",
		SecretAccessKey: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStore is the conformance suite every Store implementation passes.
func TestStore(t *testing.T) {
	cases := []struct {
		name string
		test func(t *testing.T, s storage.Store, b backend)
	}{
		{"RoundTrip", testRoundTrip},
		{"MD5", testMD5},
		{"Overwrite", testOverwrite},
		{"DeleteIsIdempotent", testDeleteIsIdempotent},
		{"MissingKeyIsNotFound", testMissingKeyIsNotFound},
		{"InvalidKeysAreRejected", testInvalidKeysAreRejected},
		{"ReadersNeverSeePartialObjects", testReadersNeverSeePartialObjects},
		{"PresignGet", testPresignGet},
		{"FailedPutKeepsPreviousObject", testFailedPutKeepsPreviousObject},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					c.test(t, b.open(t), b)
				})
			}
		})
	}
}

func testRoundTrip(t *testing.T, s storage.Store, _ backend) {
	ctx := t.Context()
	data := randomBytes(t, 300<<10)
	put, err := s.Put(ctx, "sync/users/42/cards.sqlite", bytes.NewReader(data), "application/vnd.sqlite3")
	if err != nil {
		t.Fatal(err)
	}
	want := storage.ObjectInfo{
		Key:         "sync/users/42/cards.sqlite",
		Size:        int64(len(data)),
		MD5:         md5Hex(data),
		ContentType: "application/vnd.sqlite3",
	}
	assertInfo(t, "Put", put, want)

	got, info := getAll(t, s, want.Key)
	if !bytes.Equal(got, data) {
		t.Errorf("Get returned %d bytes that differ from the %d put", len(got), len(data))
	}
	assertInfo(t, "Get", info, want)

	head, err := s.Head(ctx, want.Key)
	if err != nil {
		t.Fatal(err)
	}
	assertInfo(t, "Head", head, want)
	if head.ModTime.IsZero() || time.Since(head.ModTime) > time.Hour {
		t.Errorf("Head ModTime = %v, want about now", head.ModTime)
	}
}

func testMD5(t *testing.T, s storage.Store, _ backend) {
	ctx := t.Context()
	// Empty, tiny, not a multiple of any buffer size, and larger than the
	// copy buffers and S3's multipart threshold would be.
	for _, size := range []int{0, 1, 64<<10 + 1, 6 << 20} {
		key := "md5/" + strconv.Itoa(size)
		data := randomBytes(t, size)
		put, err := s.Put(ctx, key, bytes.NewReader(data), "")
		if err != nil {
			t.Fatal(err)
		}
		head, err := s.Head(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string]string{"Put": put.MD5, "Head": head.MD5} {
			if want := md5Hex(data); got != want {
				t.Errorf("%d bytes: %s MD5 = %q, want %q", size, name, got, want)
			}
		}
		if head.Size != int64(size) {
			t.Errorf("%d bytes: Head Size = %d", size, head.Size)
		}
		if head.ContentType != "application/octet-stream" {
			t.Errorf("no content type given: Head ContentType = %q, want application/octet-stream", head.ContentType)
		}
	}
}

func testOverwrite(t *testing.T, s storage.Store, _ backend) {
	ctx := t.Context()
	first, second := randomBytes(t, 100<<10), randomBytes(t, 10)
	if _, err := s.Put(ctx, "img/a", bytes.NewReader(first), "image/png"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "img/a", bytes.NewReader(second), "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	want := storage.ObjectInfo{Key: "img/a", Size: int64(len(second)), MD5: md5Hex(second), ContentType: "image/jpeg"}
	got, info := getAll(t, s, "img/a")
	if !bytes.Equal(got, second) {
		t.Errorf("after overwrite Get = %d bytes, want the second object's %d", len(got), len(second))
	}
	assertInfo(t, "Get", info, want)
	head, err := s.Head(ctx, "img/a")
	if err != nil {
		t.Fatal(err)
	}
	assertInfo(t, "Head", head, want)
}

func testDeleteIsIdempotent(t *testing.T, s storage.Store, _ backend) {
	ctx := t.Context()
	if _, err := s.Put(ctx, "img/gone", strings.NewReader("x"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Delete(ctx, "img/gone"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if _, err := s.Head(ctx, "img/gone"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Head after Delete: err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "never/existed"); err != nil {
		t.Errorf("Delete of a key never stored: %v", err)
	}
}

func testMissingKeyIsNotFound(t *testing.T, s storage.Store, _ backend) {
	ctx := t.Context()
	if _, err := s.Put(ctx, "dir/object", strings.NewReader("x"), ""); err != nil {
		t.Fatal(err)
	}
	// "dir" is only a prefix of a key and "dir/object/below" lies under an
	// object: neither is an object.
	for _, key := range []string{"missing", "dir", "dir/missing", "dir/object/below"} {
		if _, err := s.Head(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Head(%q): err = %v, want ErrNotFound", key, err)
		}
		body, _, err := s.Get(ctx, key)
		if err == nil {
			body.Close()
		}
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%q): err = %v, want ErrNotFound", key, err)
		}
	}
}

func testInvalidKeysAreRejected(t *testing.T, s storage.Store, _ backend) {
	ctx := t.Context()
	invalid := []string{
		"", "/etc/passwd", "../escape", "a/../../escape", "a/..", "a//b", "a/", "./a", "a/./b",
		".hidden", "a/.put-123", `a\b`, "nul\x00byte", "\xff", strings.Repeat("k", 1025),
	}
	for _, key := range invalid {
		if _, err := s.Put(ctx, key, strings.NewReader("x"), ""); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if _, _, err := s.Get(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Get(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Head(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Head(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Delete(%q): err = %v, want ErrInvalidKey", key, err)
		}
		if _, _, err := s.PresignGet(ctx, key, time.Minute); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("PresignGet(%q): err = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, key := range []string{"a", "a.b", "b/c..d/e", "ü/ñ", "with space/and+plus", strings.Repeat("k", 200)} {
		if _, err := s.Put(ctx, key, strings.NewReader("x"), ""); err != nil {
			t.Errorf("Put(%q) of a valid key: %v", key, err)
		}
	}
}

// testReadersNeverSeePartialObjects overwrites one key back and forth
// between versions while readers read it: every read must return one
// version whole, with the metadata of that same version.
func testReadersNeverSeePartialObjects(t *testing.T, s storage.Store, _ backend) {
	ctx := t.Context()
	const key, puts, readers = "sync/hot.sqlite", 24, 4
	versions := make(map[string][]byte) // MD5 → content
	var order [][]byte
	for _, size := range []int{256 << 10, 700 << 10, 1} {
		data := randomBytes(t, size)
		versions[md5Hex(data)] = data
		order = append(order, data)
	}
	if _, err := s.Put(ctx, key, bytes.NewReader(order[0]), ""); err != nil {
		t.Fatal(err)
	}

	writerDone := make(chan struct{})
	var wg sync.WaitGroup
	reads := make([]int, readers)
	for r := range readers {
		wg.Go(func() {
			for {
				select {
				case <-writerDone:
					return
				default:
				}
				got, info, err := readObject(ctx, s, key)
				if err != nil {
					t.Error(err)
					return
				}
				want, ok := versions[md5Hex(got)]
				if !ok || !bytes.Equal(got, want) {
					t.Errorf("read %d bytes that are no version in full", len(got))
					return
				}
				if info.MD5 != md5Hex(got) || info.Size != int64(len(got)) {
					t.Errorf("read a %d-byte version with metadata of another: %+v", len(got), info)
					return
				}
				reads[r]++
			}
		})
	}
	for i := range puts {
		if _, err := s.Put(ctx, key, bytes.NewReader(order[i%len(order)]), ""); err != nil {
			t.Error(err)
			break
		}
	}
	close(writerDone)
	wg.Wait()
	t.Logf("reads per reader during %d overwrites: %v", puts, reads)
}

func testPresignGet(t *testing.T, s storage.Store, b backend) {
	ctx := t.Context()
	data := randomBytes(t, 50<<10)
	if _, err := s.Put(ctx, "share/file.bin", bytes.NewReader(data), "application/octet-stream"); err != nil {
		t.Fatal(err)
	}
	url, ok, err := s.PresignGet(ctx, "share/file.bin", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ok != b.canPresign {
		t.Fatalf("PresignGet ok = %v, want %v", ok, b.canPresign)
	}
	if !ok {
		if url != "" {
			t.Errorf("PresignGet without presigning returned URL %q", url)
		}
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Errorf("GET presigned URL: %s, %d bytes (equal: %v), want 200 and the %d bytes put",
			resp.Status, len(got), bytes.Equal(got, data), len(data))
	}
}

func testFailedPutKeepsPreviousObject(t *testing.T, s storage.Store, _ backend) {
	ctx := t.Context()
	previous := randomBytes(t, 100<<10)
	if _, err := s.Put(ctx, "img/kept", bytes.NewReader(previous), "image/png"); err != nil {
		t.Fatal(err)
	}
	errBroken := errors.New("client went away")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	attempts := []struct {
		name string
		ctx  context.Context
		body io.Reader
		want error
	}{
		{"reader fails midway", ctx, io.MultiReader(bytes.NewReader(randomBytes(t, 200<<10)), failingReader{errBroken}), errBroken},
		{"context cancelled", cancelled, bytes.NewReader(randomBytes(t, 10)), context.Canceled},
	}
	for _, a := range attempts {
		if _, err := s.Put(a.ctx, "img/kept", a.body, "image/jpeg"); !errors.Is(err, a.want) {
			t.Errorf("%s: Put err = %v, want %v", a.name, err, a.want)
		}
		got, info := getAll(t, s, "img/kept")
		if !bytes.Equal(got, previous) || info.MD5 != md5Hex(previous) || info.ContentType != "image/png" {
			t.Errorf("%s: the previous object changed: %d bytes, %+v", a.name, len(got), info)
		}
	}
}

// TestHeadDoesNotReadObject checks, through the bytes this process reads
// from files and sockets, that Head does not fetch the object. It is not
// parallel, so no other test's reads are counted.
func TestHeadDoesNotReadObject(t *testing.T) {
	if _, err := readBytesSoFar(); err != nil {
		t.Skipf("no per-process I/O accounting: %v", err)
	}
	const size = 8 << 20
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			if _, err := s.Put(t.Context(), "big", bytes.NewReader(randomBytes(t, size)), ""); err != nil {
				t.Fatal(err)
			}
			headRead := bytesReadBy(t, func() {
				if _, err := s.Head(t.Context(), "big"); err != nil {
					t.Fatal(err)
				}
			})
			getRead := bytesReadBy(t, func() { getAll(t, s, "big") })
			if headRead > size/16 {
				t.Errorf("Head of a %d-byte object read %d bytes", size, headRead)
			}
			if getRead < size {
				t.Errorf("Get of a %d-byte object read only %d bytes; is the accounting working?", size, getRead)
			}
		})
	}
}

func TestLocalFailedPutLeavesNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	body := io.MultiReader(strings.NewReader("partial"), failingReader{errors.New("boom")})
	if _, err := s.Put(t.Context(), "a/b", body, ""); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	entries, err := os.ReadDir(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
}

func TestLocalCorruptFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "raw"), []byte("not written by Put"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = s.Head(t.Context(), "raw")
	if err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Head of a foreign file: err = %v, want a corruption error", err)
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func getAll(t *testing.T, s storage.Store, key string) ([]byte, storage.ObjectInfo) {
	t.Helper()
	data, info, err := readObject(t.Context(), s, key)
	if err != nil {
		t.Fatal(err)
	}
	return data, info
}

// readObject is getAll for goroutines other than the test's, which must not
// call t.Fatal.
func readObject(ctx context.Context, s storage.Store, key string) ([]byte, storage.ObjectInfo, error) {
	body, info, err := s.Get(ctx, key)
	if err != nil {
		return nil, storage.ObjectInfo{}, err
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, storage.ObjectInfo{}, fmt.Errorf("read %s: %w", key, err)
	}
	return data, info, nil
}

// assertInfo compares everything but ModTime, which backends take from
// different clocks.
func assertInfo(t *testing.T, op string, got, want storage.ObjectInfo) {
	t.Helper()
	got.ModTime, want.ModTime = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("%s info = %+v, want %+v", op, got, want)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// bytesReadBy is how many bytes this process read (files and sockets)
// while f ran.
func bytesReadBy(t *testing.T, f func()) int64 {
	t.Helper()
	before, err := readBytesSoFar()
	if err != nil {
		t.Fatal(err)
	}
	f()
	after, err := readBytesSoFar()
	if err != nil {
		t.Fatal(err)
	}
	return after - before
}

func readBytesSoFar() (int64, error) {
	stats, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(stats), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("no rchar in /proc/self/io")
}

// The trailer is found whether the file's end read at once holds all of it, part of it, or
// the whole (small) file.
func TestLocalTrailerOfEveryLength(t *testing.T) {
	s, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{0, 1, 100, 511, 600, 4096} {
		for _, typ := range []string{"application/vnd.sqlite3", "application/x-" + strings.Repeat("long", 150)} {
			key := fmt.Sprintf("o/%d-%d", size, len(typ))
			data := randomBytes(t, size)
			if _, err := s.Put(t.Context(), key, bytes.NewReader(data), typ); err != nil {
				t.Fatal(err)
			}
			got, info := getAll(t, s, key)
			if !bytes.Equal(got, data) || info.Size != int64(size) || info.ContentType != typ {
				t.Errorf("%d bytes, type of %d: got %d bytes (equal %v), size %d, type %.20q", size, len(typ), len(got), bytes.Equal(got, data), info.Size, info.ContentType)
			}
		}
	}
}

// TestLocalKeepsATrailerUntilItsFileChanges: a trailer read once is not read again while its
// file is the same (a second Head reads no bytes); an object Put again under the key, even of
// the same size, is a new file and its own trailer is read; a store opened on the same
// directory (another process) sees the same; a file changed in place is read again.
func TestLocalKeepsATrailerUntilItsFileChanges(t *testing.T) {
	if _, err := readBytesSoFar(); err != nil {
		t.Skipf("no per-process I/O accounting: %v", err)
	}
	dir := t.TempDir()
	s, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	first, second := randomBytes(t, 4096), randomBytes(t, 4096)
	if _, err := s.Put(t.Context(), "k", bytes.NewReader(first), "application/x-first"); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Head(t.Context(), "k"); err != nil || info.MD5 != md5Hex(first) {
		t.Fatalf("Head = %+v, %v", info, err)
	}
	// The accounting counts its own read of /proc/self/io (about 100 bytes, a few more as its
	// numbers grow): that is the floor. A trailer read is at least 512 bytes.
	floor := bytesReadBy(t, func() {}) + 64
	if n := bytesReadBy(t, func() {
		if info, err := s.Head(t.Context(), "k"); err != nil || info.MD5 != md5Hex(first) || info.Key != "k" {
			t.Fatalf("second Head = %+v, %v", info, err)
		}
	}); n > floor {
		t.Errorf("a second Head of the same file read %d bytes (the accounting alone reads up to %d); want its trailer kept", n, floor)
	}
	fresh, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytesReadBy(t, func() { _, _ = fresh.Head(t.Context(), "k") }); n < floor+256 {
		t.Errorf("a first Head read %d bytes (the accounting alone reads up to %d); is the accounting working?", n, floor)
	}

	if _, err := s.Put(t.Context(), "k", bytes.NewReader(second), "application/x-second"); err != nil {
		t.Fatal(err)
	}
	data, info := getAll(t, s, "k")
	if !bytes.Equal(data, second) || info.MD5 != md5Hex(second) || info.ContentType != "application/x-second" {
		t.Fatalf("after a second Put of the same size: %d bytes, %+v", len(data), info)
	}
	other, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := other.Head(t.Context(), "k"); err != nil || info.MD5 != md5Hex(second) {
		t.Fatalf("another store on the directory: %+v, %v", info, err)
	}

	// Changed in place (not by Put): another size and time, so the trailer is read again and
	// the file is found foreign.
	if err := os.WriteFile(filepath.Join(dir, "k"), []byte("not written by Put"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(t.Context(), "k"); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Head of a file changed in place: %v; want a corruption error", err)
	}
}
