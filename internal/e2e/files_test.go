package e2e

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/app"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/testenv"
)

// uploadLimit is the upload size limit of these tests; the valid images stay well below it.
const uploadLimit = 2048

// tinyImage is a small picture with a few colours, so every encoder has something to encode.
func tinyImage(w, h int) *image.Paletted {
	palette := color.Palette{color.White, color.Black, color.RGBA{R: 200, G: 30, B: 30, A: 255}, color.RGBA{G: 120, B: 200, A: 255}}
	img := image.NewPaletted(image.Rect(0, 0, w, h), palette)
	for y := range h {
		for x := range w {
			img.SetColorIndex(x, y, uint8((x+y)%len(palette)))
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 50}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// noisyPNG is a PNG of random pixels, which does not compress: about 4·w·h bytes.
func noisyPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.Uint32())
	}
	return encodePNG(t, img)
}

// padded appends zero bytes to data up to n bytes: still sniffed as the same type.
func padded(data []byte, n int) []byte {
	return append(bytes.Clone(data), make([]byte, n-len(data))...)
}

// multipartBody builds a multipart/form-data body with one file part; partType is the type the
// client claims for the part (the server must not believe it).
func multipartBody(t testing.TB, field, filename, partType string, data []byte) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, field, filename))
	h.Set("Content-Type", partType)
	part, err := w.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.FormDataContentType(), b.Bytes()
}

func upload(t testing.TB, e *Env, token, field, filename, partType string, data []byte) *apiclient.UploadFileResponse {
	t.Helper()
	ct, body := multipartBody(t, field, filename, partType, data)
	r, err := e.As(token).UploadFileWithBodyWithResponse(ctx, ct, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func setAccountImage(t testing.TB, e *Env, token string, data []byte) *apiclient.SetAccountImageResponse {
	t.Helper()
	ct, body := multipartBody(t, "file", "me.png", "image/png", data)
	r, err := e.As(token).SetAccountImageWithBodyWithResponse(ctx, ct, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// getFile downloads the file at url (an API file URL) as the holder of token, acting as a
// profile when headers name one.
func getFile(t testing.TB, e *Env, token, url string, headers ...string) *apiclient.GetFileResponse {
	t.Helper()
	r, err := e.As(token, headers...).GetFileWithResponse(ctx, fileUUID(t, url), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fileUUID parses the public id out of an API file URL (/api/v1/files/{public id}).
func fileUUID(t testing.TB, url string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(strings.TrimPrefix(url, "/api/v1/files/"))
	if err != nil || !strings.HasPrefix(url, "/api/v1/files/") || id.Version() != 4 {
		t.Fatalf("not a file URL with a random id: %q", url)
	}
	return id
}

// fileIDOf is the public id of an API file URL.
func fileIDOf(t testing.TB, url string) string { return fileUUID(t, url).String() }

// unknownFileURL is a well-formed file URL of no file.
func unknownFileURL() string { return "/api/v1/files/" + uuid.NewString() }

// objectStore is one backend the upload tests run against.
type objectStore struct {
	name string
	// options configures the server for the backend; it runs once per test.
	options func(t *testing.T) Option
	// objects counts the objects the backend holds for e.
	objects func(t *testing.T, e *Env) int
}

// localStore is the default object store: a directory.
var localStore = objectStore{
	name:    "local",
	options: func(*testing.T) Option { return func(*config.Config) {} },
	objects: func(t *testing.T, e *Env) int {
		t.Helper()
		n := 0
		err := filepath.WalkDir(e.Config.StorageDir, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++ // temporary files of a failed write count too
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	},
}

// s3Store is a fresh bucket of the shared moto server per test.
var s3Store = objectStore{
	name: "s3",
	options: func(t *testing.T) Option {
		t.Helper()
		endpoint := testenv.AWSEndpoint(t)
		bucket := testenv.UniqueName("bkt")
		s, err := storage.NewS3(ctx, storage.S3Config{
			Bucket: bucket, Region: "us-east-1", EndpointURL: endpoint, UsePathStyle: true,
			AccessKeyID: "test", SecretAccessKey: "test",
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureBucket(ctx); err != nil {
			t.Fatal(err)
		}
		return func(c *config.Config) {
			c.AWS.S3Bucket = bucket
			c.AWS.EndpointURL = endpoint
			c.AWS.S3PathStyle = true
			c.AWS.AccessKeyID = "test"
			c.AWS.SecretAccessKey = "test"
			c.AWS.Region = "us-east-1"
		}
	},
	objects: func(t *testing.T, e *Env) int {
		t.Helper()
		return len(bucketKeys(t, e.Config))
	},
}

// objectStores are the backends every storage test runs against: the local directory, then S3.
var objectStores = []objectStore{localStore, s3Store}

// bucketKeys lists the keys in the configured bucket with a client of our own.
func bucketKeys(t *testing.T, c config.Config) []string {
	t.Helper()
	awsCfg, err := app.AWSConfig(ctx, c.AWS)
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(c.AWS.EndpointURL)
		o.UsePathStyle = true
	})
	var keys []string
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(c.AWS.S3Bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("list bucket %s: %v", c.AWS.S3Bucket, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

func TestUploads(t *testing.T) {
	for _, store := range objectStores {
		t.Run(store.name, func(t *testing.T) {
			e := New(t, store.options(t), func(c *config.Config) { c.MaxUploadBytes = uploadLimit })
			u := e.SignUp(t)
			pic := tinyImage(6, 4)

			t.Run("types are sniffed from the bytes", func(t *testing.T) {
				cases := []struct {
					name, filename, claimed, want string
					data                          []byte
				}{
					{"png", "a.png", "image/png", "image/png", encodePNG(t, pic)},
					{"gif", "a.gif", "image/gif", "image/gif", encodeGIF(t, pic)},
					{"jpeg", "a.jpg", "image/jpeg", "image/jpeg", encodeJPEG(t, pic)},
					{"png claimed as jpeg", "a.jpg", "image/jpeg", "image/png", encodePNG(t, tinyImage(3, 3))},
					{"png claimed as octet-stream", "blob", "application/octet-stream", "image/png", encodePNG(t, tinyImage(5, 2))},
					{"exactly the limit", "a.png", "image/png", "image/png", padded(encodePNG(t, pic), uploadLimit)},
				}
				for _, tc := range cases {
					t.Run(tc.name, func(t *testing.T) {
						if len(tc.data) > uploadLimit {
							t.Fatalf("test image of %d bytes is above the limit", len(tc.data))
						}
						objects := store.objects(t, e)
						r := upload(t, e, u.Token(), "file", tc.filename, tc.claimed, tc.data)
						Status(t, "upload", r.StatusCode(), http.StatusCreated, r.Body)
						f := r.JSON201
						if f.Id <= 0 || fileIDOf(t, f.Url) == "" || f.ContentType != tc.want || f.Size != int64(len(tc.data)) {
							t.Fatalf("file %+v, want %s of %d bytes", f, tc.want, len(tc.data))
						}
						if strings.Contains(string(r.Body), u.Email) {
							t.Fatalf("file metadata exposes the uploader's email: %s", r.Body)
						}
						if got := store.objects(t, e); got != objects+1 {
							t.Fatalf("objects: %d, want %d", got, objects+1)
						}

						got := getFile(t, e, u.Token(), f.Url)
						Status(t, "get file", got.StatusCode(), http.StatusOK, got.Body)
						sum := md5.Sum(tc.data)
						h := got.HTTPResponse.Header
						if !bytes.Equal(got.Body, tc.data) || h.Get("Content-Type") != tc.want || h.Get("ETag") != `"`+hex.EncodeToString(sum[:])+`"` {
							t.Fatalf("download: %d bytes (want %d), Content-Type %q, ETag %q", len(got.Body), len(tc.data), h.Get("Content-Type"), h.Get("ETag"))
						}
						if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") == "" {
							t.Fatalf("download headers: %v", h)
						}
					})
				}
			})

			t.Run("download needs a session and an existing id", func(t *testing.T) {
				r := upload(t, e, u.Token(), "file", "a.png", "image/png", encodePNG(t, pic))
				Status(t, "upload", r.StatusCode(), http.StatusCreated, r.Body)
				anon, err := e.Anon().GetFileWithResponse(ctx, fileUUID(t, r.JSON201.Url), nil)
				if err != nil {
					t.Fatal(err)
				}
				Status(t, "anonymous download", anon.StatusCode(), http.StatusUnauthorized, anon.Body)
				missing := getFile(t, e, u.Token(), unknownFileURL())
				Status(t, "unknown id", missing.StatusCode(), http.StatusNotFound, missing.Body)
				if p := Problem(t, missing.Body); p.Code != "resource.not_found" {
					t.Fatalf("unknown id: %s", missing.Body)
				}
				status, _, body := e.Raw(t, "GET", "/api/v1/files/abc", "", nil, "Authorization", "Bearer "+u.Token())
				Status(t, "id that is not a number", status, http.StatusBadRequest, body)
			})

			t.Run("rejected uploads write nothing", func(t *testing.T) {
				big := noisyPNG(t, 50, 50)
				if len(big) < 4*uploadLimit {
					t.Fatalf("noisy PNG of %d bytes is not well above the limit", len(big))
				}
				cases := []struct {
					name, field, filename, partType string
					data                            []byte
					status                          int
					code, problemField              string
				}{
					{"text renamed .png", "file", "notes.png", "image/png", []byte("just some notes, not a picture at all\n"), http.StatusUnsupportedMediaType, "file.unsupported_type", "file"},
					{"html renamed .gif", "file", "page.gif", "image/gif", []byte("<!doctype html><script>alert(1)</script>"), http.StatusUnsupportedMediaType, "file.unsupported_type", "file"},
					{"PDF", "file", "cv.pdf", "application/pdf", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"), http.StatusUnsupportedMediaType, "file.unsupported_type", "file"},
					{"larger than the limit", "file", "big.png", "image/png", big, http.StatusRequestEntityTooLarge, "file.too_large", "file"},
					{"one byte over the limit", "file", "big.png", "image/png", padded(encodePNG(t, pic), uploadLimit+1), http.StatusRequestEntityTooLarge, "file.too_large", "file"},
					{"empty file", "file", "empty.png", "image/png", nil, http.StatusBadRequest, "request.invalid", "file"},
					{"wrong field name", "image", "a.png", "image/png", encodePNG(t, pic), http.StatusBadRequest, "request.invalid", "image"},
				}
				for _, tc := range cases {
					t.Run(tc.name, func(t *testing.T) {
						before, objects := e.Snapshot(t), store.objects(t, e)
						r := upload(t, e, u.Token(), tc.field, tc.filename, tc.partType, tc.data)
						Status(t, tc.name, r.StatusCode(), tc.status, r.Body)
						p := Problem(t, r.Body)
						if p.Code != tc.code || !hasField(p.Errors, tc.problemField) {
							t.Fatalf("want %s naming %q: %s", tc.code, tc.problemField, r.Body)
						}
						assertUnchanged(t, e, before)
						if got := store.objects(t, e); got != objects {
							t.Fatalf("objects changed from %d to %d after a rejected upload", objects, got)
						}
					})
				}

				t.Run("not multipart", func(t *testing.T) {
					before, objects := e.Snapshot(t), store.objects(t, e)
					for _, ct := range []string{"application/json", "image/png", "multipart/form-data"} {
						r, err := e.As(u.Token()).UploadFileWithBodyWithResponse(ctx, ct, strings.NewReader(`{"file":"iVBORw0KGgo="}`))
						if err != nil {
							t.Fatal(err)
						}
						if s := r.StatusCode(); s < 400 || s >= 500 {
							t.Fatalf("%s body: want a 4xx problem, got %d %s", ct, s, r.Body)
						}
						Problem(t, r.Body) // the harness checked content type and code
					}
					assertUnchanged(t, e, before)
					if got := store.objects(t, e); got != objects {
						t.Fatalf("objects changed from %d to %d", objects, got)
					}
				})
			})

			t.Run("account image", func(t *testing.T) {
				owner := e.SignUp(t)
				if owner.Session.User.ImageUrl != nil {
					t.Fatal("a new account has no image")
				}
				objects := store.objects(t, e)
				first := setAccountImage(t, e, owner.Token(), encodePNG(t, pic))
				Status(t, "set image", first.StatusCode(), http.StatusOK, first.Body)
				if first.JSON200.ImageUrl == nil {
					t.Fatalf("image_url after setting the image: %s", first.Body)
				}
				firstID := *first.JSON200.ImageUrl
				if img := getFile(t, e, owner.Token(), firstID); img.StatusCode() != http.StatusOK || img.HTTPResponse.Header.Get("Content-Type") != "image/png" {
					t.Fatalf("the account image is served: %d", img.StatusCode())
				}
				if got := store.objects(t, e); got != objects+1 {
					t.Fatalf("objects: %d, want %d", got, objects+1)
				}

				second := setAccountImage(t, e, owner.Token(), encodeGIF(t, pic))
				Status(t, "replace image", second.StatusCode(), http.StatusOK, second.Body)
				secondID := *second.JSON200.ImageUrl
				if secondID == firstID {
					t.Fatal("a new image is a new file")
				}
				if n := e.Count(t, "SELECT count(*) FROM files WHERE public_id = $1", fileIDOf(t, firstID)); n != 0 {
					t.Fatal("the replaced image's row is removed")
				}
				if got := store.objects(t, e); got != objects+1 {
					t.Fatalf("the replaced image's object is removed: %d objects, want %d", got, objects+1)
				}
				if old := getFile(t, e, owner.Token(), firstID); old.StatusCode() != http.StatusNotFound {
					t.Fatalf("replaced image: %d", old.StatusCode())
				}

				rejected := setAccountImage(t, e, owner.Token(), []byte("not an image at all"))
				Status(t, "set a text file as image", rejected.StatusCode(), http.StatusUnsupportedMediaType, rejected.Body)
				if me, _ := e.As(owner.Token()).GetMyAccountWithResponse(ctx); me.JSON200.ImageUrl == nil || *me.JSON200.ImageUrl != *second.JSON200.ImageUrl {
					t.Fatalf("a rejected image leaves the current one: %s", me.Body)
				}

				del, err := e.As(owner.Token()).DeleteAccountImageWithResponse(ctx)
				if err != nil {
					t.Fatal(err)
				}
				Status(t, "delete image", del.StatusCode(), http.StatusOK, del.Body)
				if del.JSON200.ImageUrl != nil {
					t.Fatalf("image_url after deleting: %s", del.Body)
				}
				if n := e.Count(t, "SELECT count(*) FROM files WHERE public_id = $1", fileIDOf(t, secondID)); n != 0 {
					t.Fatal("the deleted image's row is removed")
				}
				if got := store.objects(t, e); got != objects {
					t.Fatalf("the deleted image's object is removed: %d objects, want %d", got, objects)
				}
				again, _ := e.As(owner.Token()).DeleteAccountImageWithResponse(ctx)
				Status(t, "delete again", again.StatusCode(), http.StatusOK, again.Body)
			})
		})
	}
}

func TestDownloadRedirectsToS3(t *testing.T) {
	e := New(t, s3Store.options(t), func(c *config.Config) { c.AWS.S3Redirect = true })
	u := e.SignUp(t)
	data := encodePNG(t, tinyImage(7, 7))
	up := upload(t, e, u.Token(), "file", "a.png", "image/png", data)
	Status(t, "upload", up.StatusCode(), http.StatusCreated, up.Body)

	r := getFile(t, e, u.Token(), up.JSON201.Url)
	Status(t, "download", r.StatusCode(), http.StatusFound, r.Body)
	loc := r.HTTPResponse.Header.Get("Location")
	if !strings.HasPrefix(loc, e.Config.AWS.EndpointURL+"/"+e.Config.AWS.S3Bucket+"/") || !strings.Contains(loc, "X-Amz-Signature=") {
		t.Fatalf("want a presigned URL of the bucket, got %q", loc)
	}
	resp, err := http.Get(loc) // anyone holding the URL may fetch it until it expires
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("presigned URL: %d, %d bytes (want %d), Content-Type %q", resp.StatusCode, len(body), len(data), resp.Header.Get("Content-Type"))
	}

	anon, _ := e.Anon().GetFileWithResponse(ctx, fileUUID(t, up.JSON201.Url), nil)
	Status(t, "anonymous download", anon.StatusCode(), http.StatusUnauthorized, anon.Body)
	missing := getFile(t, e, u.Token(), unknownFileURL())
	Status(t, "unknown id", missing.StatusCode(), http.StatusNotFound, missing.Body)
}
