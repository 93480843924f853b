package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/apiclient"
)

// call sends a JSON request as user (token) acting as profile (0 = no X-Profile-Id).
func (e *Env) call(t testing.TB, token string, acting int64, method, path string, body any, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	var raw []byte
	ct := ""
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		ct = "application/json"
	}
	if token != "" {
		headers = append(headers, "Authorization", "Bearer "+token)
	}
	if acting != 0 {
		headers = append(headers, "X-Profile-Id", strconv.FormatInt(acting, 10))
	}
	return e.Raw(t, method, path, ct, raw, headers...)
}

func decode[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, body)
	}
	return v
}

// FirstProfile is the profile created with the account.
func (e *Env) FirstProfile(t testing.TB, u User) int64 {
	t.Helper()
	return int64(e.Count(t, "SELECT min(p.id)::int FROM profiles p JOIN users us ON us.id = p.user_id WHERE us.login_id = $1", u.LoginID))
}

// NewProfile creates a profile for u with the given body and returns it.
func (e *Env) NewProfile(t testing.TB, u User, body map[string]any) api.Profile {
	t.Helper()
	status, _, b := e.call(t, u.Token(), 0, "POST", "/api/v1/profiles", body)
	Status(t, "create profile", status, http.StatusCreated, b)
	return decode[api.Profile](t, b)
}

// NewCard creates a card for profile as u.
func (e *Env) NewCard(t testing.TB, u User, profileID int64, body map[string]any) api.Card {
	t.Helper()
	status, _, b := e.call(t, u.Token(), profileID, "POST", "/api/v1/cards", body)
	Status(t, "create card", status, http.StatusCreated, b)
	return decode[api.Card](t, b)
}

func TestProfileLifecycle(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	data := map[string]any{
		"phone":   map[string]any{"index": 0, "value": map[string]any{"home": map[string]any{"index": 1, "value": "+82 2 000"}, "mobile": map[string]any{"index": 0, "value": "+82 10 111"}}},
		"email":   map[string]any{"index": 1, "value": map[string]any{"work": map[string]any{"index": 0, "value": "jane@acme.test"}}},
		"website": map[string]any{"index": 2, "value": map[string]any{"blog": map[string]any{"index": 0, "value": "https://jane.test"}}},
	}
	p := e.NewProfile(t, u, map[string]any{"name": " Jane at work ", "team_name": "ACME", "data": data})
	if p.Name != "Jane at work" || !p.Private || p.Phone == nil || *p.Phone != "+82 10 111" || p.Email == nil || *p.Email != "jane@acme.test" || !p.Mine {
		t.Fatalf("created profile: private by default, trimmed name, main contacts derived: %+v", p)
	}
	if _, ok := p.Data["website"]; !ok {
		t.Fatal("unknown data fields are kept as given")
	}
	var stored string
	if err := e.Server.App.Pool.QueryRow(ctx, "SELECT jsonb_typeof(data) FROM profiles WHERE id = $1", p.Id).Scan(&stored); err != nil || stored != "object" {
		t.Fatalf("data stored as a JSON object, not a string: %q %v", stored, err)
	}
	path := fmt.Sprintf("/api/v1/profiles/%d", p.Id)

	status, hdr, body := e.call(t, u.Token(), 0, "GET", path, nil)
	Status(t, "get", status, http.StatusOK, body)
	etag := hdr.Get("ETag")
	if etag != `"1"` {
		t.Fatalf("strong quoted ETag of version 1, got %q", etag)
	}
	status, _, body = e.call(t, u.Token(), 0, "GET", path, nil, "If-None-Match", etag)
	Status(t, "conditional get", status, http.StatusNotModified, body)

	status, _, body = e.call(t, u.Token(), 0, "PATCH", path, map[string]any{"team_name": "ACME Labs"})
	Status(t, "patch without If-Match", status, http.StatusPreconditionRequired, body)
	status, _, body = e.call(t, u.Token(), 0, "PATCH", path, map[string]any{"team_name": "ACME Labs"}, "If-Match", `"7"`)
	Status(t, "patch with a stale If-Match", status, http.StatusPreconditionFailed, body)
	status, hdr, body = e.call(t, u.Token(), 0, "PATCH", path, map[string]any{"team_name": "ACME Labs", "private": false, "description": ""}, "If-Match", etag)
	Status(t, "patch", status, http.StatusOK, body)
	changed := decode[api.Profile](t, body)
	if *changed.TeamName != "ACME Labs" || changed.Private || changed.Version != 2 || hdr.Get("ETag") != `"2"` {
		t.Fatalf("patched: %s", body)
	}
	status, _, body = e.call(t, u.Token(), 0, "GET", "/api/v1/profiles", nil)
	Status(t, "list mine", status, http.StatusOK, body)
	if list := decode[api.ProfileList](t, body); len(list.Items) != 2 {
		t.Fatalf("two profiles (the first from sign-up): %s", body)
	}

	// Another user sees the now-public profile in full; the vCard has what they may see.
	other := e.SignUp(t)
	status, _, body = e.call(t, other.Token(), 0, "GET", path, nil)
	Status(t, "other reads public", status, http.StatusOK, body)
	if seen := decode[api.Profile](t, body); seen.Redacted || seen.Mine || seen.Phone == nil {
		t.Fatalf("public profile in full: %s", body)
	}
	status, hdr, body = e.call(t, other.Token(), 0, "GET", path+"/vcard", nil)
	Status(t, "vcard", status, http.StatusOK, body)
	vcard := string(body)
	for _, want := range []string{"BEGIN:VCARD\r\n", "VERSION:4.0\r\n", "FN:Jane at work\r\n", "ORG:ACME Labs\r\n", "TEL;TYPE=mobile;PREF=1:+82 10 111\r\n", "EMAIL;TYPE=work;PREF=1:jane@acme.test\r\n", "END:VCARD\r\n"} {
		if !strings.Contains(vcard, want) {
			t.Fatalf("vCard lacks %q:\n%s", want, vcard)
		}
	}
	if !strings.HasPrefix(hdr.Get("Content-Type"), "text/vcard") {
		t.Fatalf("vCard content type: %s", hdr.Get("Content-Type"))
	}

	// Delete: If-Match required; cards go with the profile; the owner still sees the tombstone.
	c := e.NewCard(t, u, p.Id, map[string]any{"name": "Work card"})
	status, _, body = e.call(t, u.Token(), 0, "DELETE", path, nil)
	Status(t, "delete without If-Match", status, http.StatusPreconditionRequired, body)
	status, _, body = e.call(t, u.Token(), 0, "DELETE", path, nil, "If-Match", `"2"`)
	Status(t, "delete", status, http.StatusNoContent, body)
	status, _, body = e.call(t, u.Token(), 0, "GET", path, nil)
	Status(t, "owner reads deleted", status, http.StatusOK, body)
	if !decode[api.Profile](t, body).Deleted {
		t.Fatal("deleted marker")
	}
	if n := e.Count(t, "SELECT count(*) FROM cards WHERE id = $1 AND deleted_at IS NOT NULL", c.Id); n != 1 {
		t.Fatal("the profile's cards are deleted with it")
	}
	status, _, body = e.call(t, u.Token(), p.Id, "GET", "/api/v1/cards", nil)
	Status(t, "acting as a deleted profile", status, http.StatusForbidden, body)
}

func pngBytes(t testing.TB) []byte { return encodePNG(t, tinyImage(4, 4)) }

func (e *Env) uploadPNG(t testing.TB, u User) apiclient.File {
	t.Helper()
	r := upload(t, e, u.Token(), "file", "a.png", "image/png", pngBytes(t))
	Status(t, "upload", r.StatusCode(), http.StatusCreated, r.Body)
	return *r.JSON201
}

type form struct {
	contentType string
	body        []byte
}

// multipartForm builds a multipart body with text fields and, when img is non-nil, a "file" part.
func multipartForm(t testing.TB, fields map[string]string, img []byte) form {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if img != nil {
		part, err := w.CreateFormFile("file", "card.png")
		if err != nil {
			t.Fatal(err)
		}
		part.Write(img)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return form{contentType: w.FormDataContentType(), body: buf.Bytes()}
}

func TestProfileImage(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	pid := e.FirstProfile(t, u)
	path := fmt.Sprintf("/api/v1/profiles/%d/image", pid)
	put := func() api.Profile {
		f := multipartForm(t, nil, pngBytes(t))
		status, _, body := e.Raw(t, "PUT", path, f.contentType, f.body, "Authorization", "Bearer "+u.Token())
		Status(t, "set profile image", status, http.StatusOK, body)
		return decode[api.Profile](t, body)
	}
	first := put()
	if first.ImageUrl == nil {
		t.Fatal("image_url set")
	}
	firstID := fileIDOf(t, *first.ImageUrl)
	second := put()
	if second.ImageUrl == nil || *second.ImageUrl == *first.ImageUrl {
		t.Fatal("image replaced")
	}
	if n := e.Count(t, "SELECT count(*) FROM files WHERE public_id = $1", firstID); n != 0 {
		t.Fatal("the replaced image is removed")
	}
	other := e.SignUp(t)
	f := multipartForm(t, nil, pngBytes(t))
	status, _, body := e.Raw(t, "PUT", path, f.contentType, f.body, "Authorization", "Bearer "+other.Token())
	Status(t, "someone else's profile image", status, http.StatusNotFound, body)
	status, _, body = e.call(t, u.Token(), 0, "DELETE", path, nil)
	Status(t, "delete image", status, http.StatusOK, body)
	if p := decode[api.Profile](t, body); p.ImageUrl != nil {
		t.Fatal("image removed")
	}
	if n := e.Count(t, "SELECT count(*) FROM files WHERE public_id = $1", fileIDOf(t, *second.ImageUrl)); n != 0 {
		t.Fatal("the deleted image's file is removed")
	}
}

func TestConcurrentUpdatesOneWins(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	pid := e.FirstProfile(t, u)
	const writers = 8
	var wg sync.WaitGroup
	statuses := make([]int, writers)
	for i := range writers {
		wg.Go(func() {
			statuses[i], _, _ = e.call(t, u.Token(), 0, "PATCH", fmt.Sprintf("/api/v1/profiles/%d", pid), map[string]any{"team_name": fmt.Sprintf("team %d", i)}, "If-Match", `"1"`)
		})
	}
	wg.Wait()
	won := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			won++
		case http.StatusPreconditionFailed:
		default:
			t.Fatalf("unexpected status %d", s)
		}
	}
	if won != 1 {
		t.Fatalf("exactly one writer with the same If-Match wins, got %d (%v)", won, statuses)
	}
	if v := e.Count(t, "SELECT version::int FROM profiles WHERE id = $1", pid); v != 2 {
		t.Fatalf("one change applied, version %d", v)
	}
}

func TestRelationsAndFollowRequests(t *testing.T) {
	e := New(t)
	alice, bob := e.SignUp(t), e.SignUp(t)
	a := e.FirstProfile(t, alice)
	pub := e.NewProfile(t, bob, map[string]any{"name": "Bob public", "private": false, "is_follow_list_public": true})
	priv := e.NewProfile(t, bob, map[string]any{"name": "Bob private"})
	rel := func(target int64) string { return fmt.Sprintf("/api/v1/profiles/%d/relation", target) }

	status, _, body := e.call(t, alice.Token(), a, "PUT", rel(pub.Id), map[string]any{"status": "FOLLOW"})
	Status(t, "follow public", status, http.StatusOK, body)
	if r := decode[api.Relation](t, body); r.Status == nil || *r.Status != "FOLLOW" {
		t.Fatalf("public follow is immediate: %s", body)
	}
	status, _, body = e.call(t, alice.Token(), a, "PUT", rel(priv.Id), map[string]any{"status": "FOLLOW"})
	Status(t, "follow private", status, http.StatusOK, body)
	if r := decode[api.Relation](t, body); *r.Status != "FOLLOW_REQUESTED" {
		t.Fatalf("private follow waits for the owner: %s", body)
	}
	status, _, body = e.call(t, alice.Token(), a, "GET", fmt.Sprintf("/api/v1/profiles/%d", priv.Id), nil)
	if p := decode[api.Profile](t, body); status != 200 || !p.Redacted || p.TeamName != nil {
		t.Fatalf("a pending request grants nothing: %d %s", status, body)
	}
	status, _, body = e.call(t, alice.Token(), a, "PUT", rel(priv.Id), map[string]any{"status": "HIDE"})
	Status(t, "hide needs an accepted follow", status, http.StatusConflict, body)

	// Bob's side: the request is listed, only to him.
	status, _, body = e.call(t, alice.Token(), 0, "GET", fmt.Sprintf("/api/v1/profiles/%d/follow-requests", priv.Id), nil)
	Status(t, "someone else's requests", status, http.StatusForbidden, body)
	status, _, body = e.call(t, bob.Token(), 0, "GET", fmt.Sprintf("/api/v1/profiles/%d/follow-requests", priv.Id), nil)
	Status(t, "requests", status, http.StatusOK, body)
	if l := decode[api.FollowRequestList](t, body); len(l.Items) != 1 || l.Items[0].Profile.Id != a {
		t.Fatalf("one request from alice: %s", body)
	}
	status, _, body = e.call(t, bob.Token(), 0, "POST", fmt.Sprintf("/api/v1/profiles/%d/follow-requests/%d", priv.Id, a), nil)
	Status(t, "accept", status, http.StatusOK, body)
	status, _, body = e.call(t, alice.Token(), a, "GET", fmt.Sprintf("/api/v1/profiles/%d", priv.Id), nil)
	if p := decode[api.Profile](t, body); status != http.StatusOK || p.Redacted {
		t.Fatalf("an accepted follow grants reading: %d %s", status, body)
	}
	status, _, body = e.call(t, alice.Token(), a, "PUT", rel(priv.Id), map[string]any{"status": "HIDE"})
	Status(t, "hide", status, http.StatusOK, body)
	status, _, body = e.call(t, bob.Token(), 0, "POST", fmt.Sprintf("/api/v1/profiles/%d/follow-requests/%d", priv.Id, a), nil)
	Status(t, "accept twice", status, http.StatusNotFound, body)

	// Followers of the public profile: alice; the owner and others (list is public) see her.
	status, _, body = e.call(t, e.SignUp(t).Token(), 0, "GET", fmt.Sprintf("/api/v1/profiles/%d/followers", pub.Id), nil)
	Status(t, "followers", status, http.StatusOK, body)
	if l := decode[api.ProfileList](t, body); len(l.Items) != 1 || l.Items[0].Id != a {
		t.Fatalf("alice follows: %s", body)
	}
	status, _, body = e.call(t, alice.Token(), 0, "GET", fmt.Sprintf("/api/v1/profiles/%d/following", a), nil)
	Status(t, "following (owner sees hidden too)", status, http.StatusOK, body)
	if l := decode[api.ProfileList](t, body); len(l.Items) != 2 {
		t.Fatalf("alice follows pub and (hidden) priv: %s", body)
	}

	// Same user, self, unknown: refused.
	status, _, body = e.call(t, bob.Token(), pub.Id, "PUT", rel(priv.Id), map[string]any{"status": "FOLLOW"})
	Status(t, "same user", status, http.StatusBadRequest, body)
	status, _, body = e.call(t, alice.Token(), a, "PUT", rel(999999), map[string]any{"status": "FOLLOW"})
	Status(t, "unknown target", status, http.StatusNotFound, body)
	status, _, body = e.call(t, alice.Token(), a, "PUT", rel(pub.Id), map[string]any{"status": "FOLLOW_REQUESTED"})
	Status(t, "status not settable", status, http.StatusBadRequest, body)
	status, _, body = e.call(t, alice.Token(), pub.Id, "PUT", rel(a), map[string]any{"status": "FOLLOW"})
	Status(t, "acting as someone else's profile", status, http.StatusForbidden, body)
	status, _, body = e.call(t, alice.Token(), 0, "PUT", rel(pub.Id), map[string]any{"status": "FOLLOW"})
	Status(t, "missing X-Profile-Id", status, http.StatusBadRequest, body)

	// Block: stored as BLOCK, removes subscriptions both ways, and the blocked side can no
	// longer see or follow the blocker.
	card := e.NewCard(t, bob, pub.Id, map[string]any{"name": "Bob's card"})
	aliceCard := e.NewCard(t, alice, a, map[string]any{"name": "Alice's card"})
	status, _, body = e.call(t, alice.Token(), a, "PUT", fmt.Sprintf("/api/v1/cards/%d/subscription", card.Id), map[string]any{})
	Status(t, "subscribe", status, http.StatusOK, body)
	status, _, body = e.call(t, bob.Token(), pub.Id, "PUT", fmt.Sprintf("/api/v1/cards/%d/subscription", aliceCard.Id), map[string]any{})
	Status(t, "subscribe back", status, http.StatusOK, body)
	if n := e.Count(t, "SELECT count(*) FROM relations WHERE to_profile_id = $1 AND from_profile_id = $2", a, pub.Id); n != 0 {
		t.Fatal("subscribing never creates follows")
	}
	status, _, body = e.call(t, bob.Token(), pub.Id, "PUT", rel(a), map[string]any{"status": "BLOCK"})
	Status(t, "block", status, http.StatusOK, body)
	if r := decode[api.Relation](t, body); *r.Status != "BLOCK" {
		t.Fatalf("BLOCK stored as BLOCK: %s", body)
	}
	if n := e.Count(t, "SELECT count(*) FROM card_subscriptions WHERE card_id IN ($1, $2)", card.Id, aliceCard.Id); n != 0 {
		t.Fatalf("block removes subscriptions both ways, %d left", n)
	}
	status, _, body = e.call(t, alice.Token(), a, "GET", fmt.Sprintf("/api/v1/profiles/%d", pub.Id), nil)
	Status(t, "blocked reader", status, http.StatusNotFound, body)
	status, _, body = e.call(t, alice.Token(), a, "PUT", rel(pub.Id), map[string]any{"status": "FOLLOW"})
	Status(t, "follow while blocked", status, http.StatusNotFound, body)
	status, _, body = e.call(t, alice.Token(), a, "PUT", rel(pub.Id), map[string]any{"status": "BLOCK"})
	Status(t, "block back is always allowed", status, http.StatusOK, body)
	status, _, body = e.call(t, alice.Token(), a, "DELETE", rel(pub.Id), nil)
	Status(t, "unblock", status, http.StatusNoContent, body)
	status, _, body = e.call(t, alice.Token(), a, "DELETE", rel(pub.Id), nil)
	Status(t, "nothing to remove", status, http.StatusNotFound, body)
	if n := e.Count(t, "SELECT count(*) FROM relations WHERE from_profile_id = $1 AND to_profile_id = $2", a, pub.Id); n != 0 {
		t.Fatal("relation removed")
	}
}

func TestCardsAndSubscriptions(t *testing.T) {
	e := New(t)
	owner, reader := e.SignUp(t), e.SignUp(t)
	pub := e.NewProfile(t, owner, map[string]any{"name": "Shop", "private": false})
	r := e.FirstProfile(t, reader)
	file := e.uploadPNG(t, owner)
	c := e.NewCard(t, owner, pub.Id, map[string]any{"name": " Card ", "data": map[string]any{"title": "CEO", "n": 3}, "preview_file_id": file.Id})
	if c.Name != "Card" || c.PreviewUrl == nil || c.Data["title"] != "CEO" || c.Private {
		t.Fatalf("created card: %+v", c)
	}
	privCard := e.NewCard(t, owner, pub.Id, map[string]any{"name": "Secret", "private": true})
	other := e.SignUp(t)
	foreignFile := e.uploadPNG(t, other)
	status, _, body := e.call(t, owner.Token(), pub.Id, "POST", "/api/v1/cards", map[string]any{"name": "x", "preview_file_id": foreignFile.Id})
	Status(t, "someone else's upload as preview", status, http.StatusBadRequest, body)

	status, _, body = e.call(t, reader.Token(), 0, "GET", fmt.Sprintf("/api/v1/profiles/%d/cards", pub.Id), nil)
	Status(t, "list profile cards", status, http.StatusOK, body)
	if l := decode[api.CardList](t, body); len(l.Items) != 1 || l.Items[0].Id != c.Id {
		t.Fatalf("readers see the public card only: %s", body)
	}
	status, _, body = e.call(t, owner.Token(), pub.Id, "GET", "/api/v1/cards", nil)
	if l := decode[api.CardList](t, body); status != 200 || len(l.Items) != 2 {
		t.Fatalf("owner lists both: %s", body)
	}
	status, _, body = e.call(t, reader.Token(), 0, "GET", fmt.Sprintf("/api/v1/cards/%d", privCard.Id), nil)
	Status(t, "private card to a stranger", status, http.StatusNotFound, body)

	sub := fmt.Sprintf("/api/v1/cards/%d/subscription", c.Id)
	status, _, body = e.call(t, reader.Token(), r, "GET", sub, nil)
	if s := decode[api.CardSubscription](t, body); status != 200 || s.Subscribed {
		t.Fatalf("not subscribed yet: %s", body)
	}
	for range 2 {
		status, _, body = e.call(t, reader.Token(), r, "PUT", sub, map[string]any{})
		Status(t, "subscribe (idempotent)", status, http.StatusOK, body)
	}
	if n := e.Count(t, "SELECT count(*) FROM card_subscriptions WHERE card_id = $1", c.Id); n != 1 {
		t.Fatalf("one subscription row, got %d", n)
	}
	status, _, body = e.call(t, reader.Token(), r, "PUT", fmt.Sprintf("/api/v1/cards/%d/subscription", privCard.Id), map[string]any{})
	Status(t, "private card without a share token", status, http.StatusNotFound, body) // not readable: as if absent
	status, _, body = e.call(t, owner.Token(), pub.Id, "PUT", sub, map[string]any{})
	Status(t, "own card", status, http.StatusConflict, body)

	// Change with If-Match; delete leaves subscribers a tombstone.
	path := fmt.Sprintf("/api/v1/cards/%d", c.Id)
	status, _, body = e.call(t, reader.Token(), 0, "PATCH", path, map[string]any{"name": "Hijack"}, "If-Match", `"1"`)
	Status(t, "someone else's card", status, http.StatusNotFound, body)
	status, hdr, body := e.call(t, owner.Token(), 0, "PATCH", path, map[string]any{"name": "Card v2", "private": false}, "If-Match", `"1"`)
	Status(t, "update card", status, http.StatusOK, body)
	if hdr.Get("ETag") != `"2"` {
		t.Fatalf("ETag after update: %q", hdr.Get("ETag"))
	}
	status, _, body = e.call(t, owner.Token(), 0, "DELETE", path, nil, "If-Match", `"1"`)
	Status(t, "stale delete", status, http.StatusPreconditionFailed, body)
	status, _, body = e.call(t, owner.Token(), 0, "DELETE", path, nil, "If-Match", `"2"`)
	Status(t, "delete card", status, http.StatusNoContent, body)
	status, _, body = e.call(t, reader.Token(), r, "GET", path, nil)
	if got := decode[api.Card](t, body); status != 200 || !got.Deleted {
		t.Fatalf("subscriber sees the tombstone: %d %s", status, body)
	}
	status, _, body = e.call(t, other.Token(), 0, "GET", path, nil)
	Status(t, "deleted card to a stranger", status, http.StatusNotFound, body)
	status, _, body = e.call(t, reader.Token(), r, "DELETE", sub, nil)
	Status(t, "unsubscribe", status, http.StatusNoContent, body)
	status, _, body = e.call(t, reader.Token(), r, "DELETE", sub, nil)
	Status(t, "unsubscribe again", status, http.StatusNoContent, body)
}

func TestCardMultipartCreate(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	pid := e.FirstProfile(t, u)
	ok := multipartForm(t, map[string]string{"name": "From form", "data": `{"title":"x"}`, "private": "true"}, pngBytes(t))
	status, _, body := e.Raw(t, "POST", "/api/v1/cards", ok.contentType, ok.body, "Authorization", "Bearer "+u.Token(), "X-Profile-Id", strconv.FormatInt(pid, 10))
	Status(t, "multipart card", status, http.StatusCreated, body)
	if c := decode[api.Card](t, body); c.PreviewUrl == nil || !c.Private || c.Data["title"] != "x" {
		t.Fatalf("multipart card: %s", body)
	}
	before := e.Snapshot(t)
	bad := multipartForm(t, map[string]string{"data": `[1]`, "name": "n"}, pngBytes(t))
	status, _, body = e.Raw(t, "POST", "/api/v1/cards", bad.contentType, bad.body, "Authorization", "Bearer "+u.Token(), "X-Profile-Id", strconv.FormatInt(pid, 10))
	Status(t, "bad data in form", status, http.StatusBadRequest, body)
	noName := multipartForm(t, map[string]string{}, pngBytes(t))
	status, _, body = e.Raw(t, "POST", "/api/v1/cards", noName.contentType, noName.body, "Authorization", "Bearer "+u.Token(), "X-Profile-Id", strconv.FormatInt(pid, 10))
	Status(t, "form without name", status, http.StatusBadRequest, body)
	assertUnchanged(t, e, before)
}

func TestProfileAndCardInputIsValidated(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	pid := e.FirstProfile(t, u)
	cases := []struct {
		name, method, path, body string
		acting                   bool
		status                   int
	}{
		{"profile data not an object", "POST", "/api/v1/profiles", `{"name":"x","data":"{}"}`, false, 400},
		{"profile data value not a string", "POST", "/api/v1/profiles", `{"name":"x","data":{"phone":{"index":0,"value":{"m":{"index":0,"value":5}}}}}`, false, 400},
		{"profile data negative index", "POST", "/api/v1/profiles", `{"name":"x","data":{"phone":{"index":-1,"value":{}}}}`, false, 400},
		{"profile unknown field", "POST", "/api/v1/profiles", `{"name":"x","owner":1}`, false, 400},
		{"profile blank name", "POST", "/api/v1/profiles", `{"name":"   "}`, false, 400},
		{"profile name too long", "POST", "/api/v1/profiles", `{"name":"` + strings.Repeat("n", 101) + `"}`, false, 400},
		{"card without name", "POST", "/api/v1/cards", `{"data":{}}`, true, 400},
		{"card data array", "POST", "/api/v1/cards", `{"name":"c","data":[]}`, true, 400},
		{"card private as string", "POST", "/api/v1/cards", `{"name":"c","private":"yes"}`, true, 400},
		{"card unknown preview", "POST", "/api/v1/cards", `{"name":"c","preview_file_id":99999}`, true, 400},
		{"malformed profile id", "GET", "/api/v1/profiles/abc", ``, false, 400},
		{"negative profile id", "GET", "/api/v1/profiles/-4", ``, false, 400},
		{"huge profile id", "GET", "/api/v1/profiles/99999999999999999999999", ``, false, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.Snapshot(t)
			headers := []string{"Authorization", "Bearer " + u.Token()}
			if tc.acting {
				headers = append(headers, "X-Profile-Id", strconv.FormatInt(pid, 10))
			}
			ct := ""
			if tc.body != "" {
				ct = "application/json"
			}
			status, _, body := e.Raw(t, tc.method, tc.path, ct, []byte(tc.body), headers...)
			Status(t, tc.name, status, tc.status, body)
			assertUnchanged(t, e, before)
		})
	}
	for _, h := range []string{"abc", "-1", "0", "1.5", "1 OR 1=1"} {
		status, _, body := e.Raw(t, "GET", "/api/v1/cards", "", nil, "Authorization", "Bearer "+u.Token(), "X-Profile-Id", h)
		Status(t, "X-Profile-Id "+h, status, http.StatusBadRequest, body)
	}
}

// TestAProfileReadAgainIsTheSameAnswerUntilItChanges: getProfile keeps the answers it encoded,
// by profile, version, visibility and whether the viewer owns it (docs/architecture.md, "A
// request"). A second read is byte for byte the first, headers included; the owner and another
// viewer of the same version each get their own answer; a change is seen at once, on the
// process that made it and on another that had kept the old answer.
func TestAProfileReadAgainIsTheSameAnswerUntilItChanges(t *testing.T) {
	e := New(t)
	owner, other := e.SignUp(t), e.SignUp(t)
	phone := func(n string) map[string]any {
		return map[string]any{"phone": map[string]any{"index": 0, "value": map[string]any{"m": map[string]any{"index": 0, "value": n}}}}
	}
	p := e.NewProfile(t, owner, map[string]any{"name": "Kept", "private": false, "data": phone("+82 10 1")})
	path := fmt.Sprintf("/api/v1/profiles/%d", p.Id)
	read := func(who User) (http.Header, []byte, api.Profile) {
		t.Helper()
		status, hdr, body := e.call(t, who.Token(), 0, "GET", path, nil)
		Status(t, "get profile", status, http.StatusOK, body)
		return hdr, body, decode[api.Profile](t, body)
	}

	h1, b1, first := read(other)
	h2, b2, _ := read(other)
	if !bytes.Equal(b1, b2) || h1.Get("ETag") != h2.Get("ETag") || h1.Get("Content-Type") != h2.Get("Content-Type") || h2.Get("ETag") != `"1"` {
		t.Fatalf("a second read differs from the first:\n%s %v\n%s %v", b1, h1, b2, h2)
	}
	if first.Mine || first.Redacted || first.Phone == nil || *first.Phone != "+82 10 1" {
		t.Fatalf("another viewer's answer: %s", b1)
	}
	if _, _, mine := read(owner); !mine.Mine {
		t.Fatal("the owner, reading the version another viewer read, is not told the profile is theirs")
	}
	if _, b, again := read(other); again.Mine || !bytes.Equal(b, b1) {
		t.Fatalf("another viewer, after the owner's read, got %s", b)
	}

	// A second process keeps version 1 too; a change made through the first is seen on both.
	second := e.StartServer(e.Config)
	onSecond := e.Client(second, other.Token())
	if r, err := onSecond.GetProfileWithResponse(ctx, p.Id, nil); err != nil || r.StatusCode() != http.StatusOK || !bytes.Equal(r.Body, b1) {
		t.Fatalf("the second process's answer to version 1: %v %s", err, r.Body)
	}
	status, _, body := e.call(t, owner.Token(), 0, "PATCH", path, map[string]any{"name": "Kept, changed", "data": phone("+82 10 2")}, "If-Match", `"1"`)
	Status(t, "patch", status, http.StatusOK, body)
	hdr, _, changed := read(other)
	if hdr.Get("ETag") != `"2"` || changed.Name != "Kept, changed" || changed.Phone == nil || *changed.Phone != "+82 10 2" {
		t.Fatalf("after the change, this process answered %v %+v", hdr.Get("ETag"), changed)
	}
	r, err := onSecond.GetProfileWithResponse(ctx, p.Id, nil)
	if err != nil || r.StatusCode() != http.StatusOK || r.JSON200.Name != "Kept, changed" || r.HTTPResponse.Header.Get("ETag") != `"2"` {
		t.Fatalf("after the change, the second process answered %v %s", err, r.Body)
	}

	// Made private: a viewer without access gets the redacted answer of the new version.
	status, _, body = e.call(t, owner.Token(), 0, "PATCH", path, map[string]any{"private": true}, "If-Match", `"2"`)
	Status(t, "make private", status, http.StatusOK, body)
	if _, b, hidden := read(other); !hidden.Redacted || hidden.Phone != nil || hidden.Name != "Kept, changed" {
		t.Fatalf("a private profile to a stranger: %s", b)
	}
}
