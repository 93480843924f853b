package e2e

import (
	"bytes"
	"fmt"
	mpart "mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

// TestFileReadAuthorization is the authorisation matrix of files (docs/product.md §7): every kind
// of owner (what the file is attached to) × every kind of caller. A file may be read only by
// someone who may see what it belongs to; anyone else gets 404, an anonymous caller 401.
func TestFileReadAuthorization(t *testing.T) {
	e := New(t)
	o := e.SignUp(t)
	users := map[actor]User{owner: o}
	acting := map[actor]int64{owner: e.FirstProfile(t, o)}
	for _, a := range []actor{stranger, admin, blocked, follower} {
		users[a] = e.SignUp(t)
		acting[a] = e.FirstProfile(t, users[a])
	}
	e.Exec(t, "UPDATE users SET role = 'admin' WHERE login_id = $1", users[admin].LoginID)
	relate := func(who actor, from, to int64, status string) {
		t.Helper()
		code, _, body := e.call(t, users[who].Token(), from, "PUT", fmt.Sprintf("/api/v1/profiles/%d/relation", to), map[string]any{"status": status})
		Status(t, "relate", code, http.StatusOK, body)
	}
	multipart := func(who actor, from int64, method, path string, want int) []byte {
		t.Helper()
		f := multipartForm(t, nil, pngBytes(t))
		headers := []string{"Authorization", "Bearer " + users[who].Token()}
		if from != 0 {
			headers = append(headers, "X-Profile-Id", strconv.FormatInt(from, 10))
		}
		code, _, body := e.Raw(t, method, path, f.contentType, f.body, headers...)
		Status(t, method+" "+path, code, want, body)
		return body
	}

	pub := e.NewProfile(t, o, map[string]any{"name": "Public", "private": false})
	priv := e.NewProfile(t, o, map[string]any{"name": "Private", "private": true})
	for _, p := range []int64{pub.Id, priv.Id} {
		relate(owner, p, acting[blocked], "BLOCK")
	}
	relate(follower, acting[follower], pub.Id, "FOLLOW")

	urls := map[string]string{}
	urls["account image"] = *decode[api.Account](t, multipart(owner, 0, "PUT", "/api/v1/account/image", http.StatusOK)).ImageUrl
	urls["public profile image"] = *decode[api.Profile](t, multipart(owner, 0, "PUT", fmt.Sprintf("/api/v1/profiles/%d/image", pub.Id), http.StatusOK)).ImageUrl
	urls["private profile image"] = *decode[api.Profile](t, multipart(owner, 0, "PUT", fmt.Sprintf("/api/v1/profiles/%d/image", priv.Id), http.StatusOK)).ImageUrl
	pubCard := e.uploadPNG(t, o)
	e.NewCard(t, o, pub.Id, map[string]any{"name": "public card", "preview_file_id": pubCard.Id})
	urls["public card preview"] = pubCard.Url
	privCard := e.uploadPNG(t, o)
	e.NewCard(t, o, pub.Id, map[string]any{"name": "private card", "private": true, "preview_file_id": privCard.Id})
	urls["private card preview"] = privCard.Url
	code, _, body := e.call(t, o.Token(), pub.Id, "POST", "/api/v1/chats", map[string]any{"invite_profile_ids": []int64{acting[follower]}})
	Status(t, "create room", code, http.StatusCreated, body)
	room := decode[api.ChatRoomCreated](t, body).Room.Id
	urls["chat image"] = *decode[api.ChatEvent](t, multipart(owner, pub.Id, "POST", fmt.Sprintf("/api/v1/chats/%d/images", room), http.StatusCreated)).ImageUrl
	urls["unused upload"] = e.uploadPNG(t, o).Url

	callers := []actor{anonymous, owner, stranger, admin, blocked, follower}
	// want[file] lists the answers for the callers above, in order.
	want := map[string][6]int{
		"account image":         {401, 200, 404, 404, 404, 404},
		"public profile image":  {401, 200, 200, 200, 404, 200},
		"private profile image": {401, 200, 200, 200, 404, 200}, // a redacted profile still shows its image
		"public card preview":   {401, 200, 200, 200, 404, 200},
		"private card preview":  {401, 200, 404, 200, 404, 404},
		"chat image":            {401, 200, 404, 404, 404, 200},
		"unused upload":         {401, 200, 404, 404, 404, 404},
	}
	for file, url := range urls {
		if !strings.HasPrefix(url, "/api/v1/files/") || len(strings.TrimPrefix(url, "/api/v1/files/")) != 36 {
			t.Fatalf("%s: URL %q has no random id", file, url)
		}
		for i, a := range callers {
			var r interface{ StatusCode() int }
			if a == anonymous {
				r = getFile(t, e, "", url)
			} else {
				r = getFile(t, e, users[a].Token(), url, "X-Profile-Id", strconv.FormatInt(acting[a], 10))
			}
			if got := r.StatusCode(); got != want[file][i] {
				t.Errorf("%s × %s: got %d, want %d", file, a, got, want[file][i])
			}
		}
	}

	// A served file cannot run as a page.
	r := getFile(t, e, o.Token(), urls["unused upload"])
	h := r.HTTPResponse.Header
	if !strings.HasPrefix(h.Get("Content-Disposition"), "inline; filename=") || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") ||
		h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("served file headers: %v", h)
	}
}

// TestUploadLimits: the per-account upload rate (429) and storage quota (413) are problem
// documents, and a refused upload stores nothing.
func TestUploadLimits(t *testing.T) {
	t.Run("rate", func(t *testing.T) {
		e := New(t, func(c *config.Config) { c.Uploads.PerHour = 2 })
		u := e.SignUp(t)
		for range 2 {
			r := upload(t, e, u.Token(), "file", "a.png", "image/png", pngBytes(t))
			Status(t, "upload", r.StatusCode(), http.StatusCreated, r.Body)
		}
		r := upload(t, e, u.Token(), "file", "a.png", "image/png", pngBytes(t))
		Status(t, "third upload", r.StatusCode(), http.StatusTooManyRequests, r.Body)
		if p := Problem(t, r.Body); p.Code != "file.rate_limited" || r.HTTPResponse.Header.Get("Retry-After") == "" {
			t.Fatalf("rate limited: %s %v", r.Body, r.HTTPResponse.Header)
		}
		if n := e.Count(t, "SELECT count(*) FROM files f JOIN users u ON u.id = f.owner_user_id WHERE u.login_id = $1", u.LoginID); n != 2 {
			t.Fatalf("files stored: %d, want 2", n)
		}
	})
	t.Run("quota", func(t *testing.T) {
		img := noisyPNG(t, 20, 20) // about 1.6 kB
		e := New(t, func(c *config.Config) {
			c.MaxUploadBytes = int64(len(img)) + 100
			c.Uploads.QuotaBytes = int64(len(img)) * 2
		})
		u := e.SignUp(t)
		for range 2 {
			r := upload(t, e, u.Token(), "file", "a.png", "image/png", img)
			Status(t, "upload", r.StatusCode(), http.StatusCreated, r.Body)
		}
		r := upload(t, e, u.Token(), "file", "a.png", "image/png", img)
		Status(t, "over quota", r.StatusCode(), http.StatusRequestEntityTooLarge, r.Body)
		if p := Problem(t, r.Body); p.Code != "file.quota_exceeded" {
			t.Fatalf("quota: %s", r.Body)
		}
	})
}

// TestUnusedUploadsAreSwept: an upload attached to nothing is removed from the database and the
// object store after UPLOAD_UNUSED_TTL; an attached one stays. The service's clock is moved
// past the TTL instead of waiting for it.
func TestUnusedUploadsAreSwept(t *testing.T) {
	clock := &testenv.Clock{}
	e := New(t, func(c *config.Config) {
		c.EmbeddedWorker = true
		c.Uploads.UnusedTTL = time.Hour
		c.Uploads.SweepPeriod = 100 * time.Millisecond
		c.Now = clock.Now
	})
	u := e.SignUp(t)
	unused := e.uploadPNG(t, u)
	used := e.uploadPNG(t, u)
	e.NewCard(t, u, e.FirstProfile(t, u), map[string]any{"name": "card", "preview_file_id": used.Id})
	// Younger than the TTL: several sweeps pass it by.
	if testenv.WaitFor(time.Second, func() bool {
		return e.Count(t, "SELECT count(*) FROM files WHERE id = $1", unused.Id) == 0
	}) {
		t.Fatal("an upload younger than UPLOAD_UNUSED_TTL was swept")
	}
	clock.Advance(time.Hour + time.Minute)
	testenv.Eventually(t, 20*time.Second, func() bool {
		return e.Count(t, "SELECT count(*) FROM files WHERE id = $1", unused.Id) == 0
	}, "the unused upload is swept")
	// The access token issued an hour ago (by the service's clock) has expired: sign in again.
	if r := getFile(t, e, u.Token(), used.Url); r.StatusCode() != http.StatusUnauthorized {
		t.Fatalf("a token an hour past its issue: %d, want 401", r.StatusCode())
	}
	in, err := e.Anon().SignInWithResponse(t.Context(), nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: Password})
	if err != nil || in.JSON200 == nil {
		t.Fatalf("sign in again: %v %v", err, in.Status())
	}
	u.Session = *in.JSON200
	if r := getFile(t, e, u.Token(), unused.Url); r.StatusCode() != http.StatusNotFound {
		t.Fatalf("swept file: %d", r.StatusCode())
	}
	if r := getFile(t, e, u.Token(), used.Url); r.StatusCode() != http.StatusOK {
		t.Fatalf("attached file: %d", r.StatusCode())
	}
}

// TestSecondFilePartRefused: an upload form with two parts is refused and stores nothing; a
// failed setAccountImage leaves no file behind.
func TestSecondFilePartRefused(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	var buf bytes.Buffer
	w := mpart.NewWriter(&buf)
	for _, name := range []string{"a.png", "b.png"} {
		part, err := w.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		part.Write(pngBytes(t))
	}
	w.Close()
	f := form{contentType: w.FormDataContentType()}
	body := buf.String()
	for _, path := range []string{"/api/v1/files", "/api/v1/account/image"} {
		method := "POST"
		if strings.HasSuffix(path, "image") {
			method = "PUT"
		}
		code, _, b := e.Raw(t, method, path, f.contentType, []byte(body), "Authorization", "Bearer "+u.Token())
		Status(t, path+" with two files", code, http.StatusBadRequest, b)
	}
	if n := e.Count(t, "SELECT count(*) FROM files f JOIN users u ON u.id = f.owner_user_id WHERE u.login_id = $1", u.LoginID); n != 0 {
		t.Fatalf("files stored: %d, want 0", n)
	}
}
