package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/syncfile/syncfiletest"
)

// Card sharing: docs/product.md §6 "Sharing".

// shareFixture is an owner with a private card on a private profile and its first link.
type shareFixture struct {
	owner     User
	ownerProf int64
	card      apiclient.Card
	share     apiclient.CardShare
}

var shareCardData = map[string]any{
	"phone":   map[string]any{"index": 0, "value": map[string]any{"mobile": map[string]any{"index": 0, "value": "+82 10 1234 5678"}}},
	"email":   map[string]any{"index": 1, "value": map[string]any{"work": map[string]any{"index": 0, "value": "jane@acme.test"}}},
	"title":   map[string]any{"index": 2, "value": "Head of Cards"},
	"address": map[string]any{"index": 3, "value": map[string]any{"office": map[string]any{"index": 0, "value": "1 Main St, Seoul"}}},
}

func (e *Env) newShareFixture(t testing.TB, private bool, body map[string]any) shareFixture {
	t.Helper()
	f := shareFixture{owner: e.SignUp(t)}
	f.ownerProf = e.FirstProfile(t, f.owner)
	file := e.uploadPNG(t, f.owner)
	c := e.NewCard(t, f.owner, f.ownerProf, map[string]any{"name": "Jane Kim, ACME", "private": private, "data": shareCardData, "preview_file_id": file.Id})
	f.card = apiclient.Card{Id: c.Id, Name: c.Name}
	f.share = e.createShare(t, f.owner, c.Id, body)
	return f
}

func (e *Env) createShare(t testing.TB, u User, cardID int64, body map[string]any) apiclient.CardShare {
	t.Helper()
	var req apiclient.CreateCardShareJSONRequestBody
	if v, ok := body["max_uses"].(int); ok {
		req.MaxUses = &v
	}
	if v, ok := body["expires_at"].(time.Time); ok {
		req.ExpiresAt = &v
	}
	r, err := e.As(u.Token()).CreateCardShareWithResponse(ctx, cardID, req)
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "create share", r.StatusCode(), http.StatusCreated, r.Body)
	return *r.JSON201
}

func (e *Env) subscribeWith(t testing.TB, u User, acting, cardID int64, token string) *apiclient.SubscribeCardResponse {
	t.Helper()
	body := apiclient.SubscribeCardJSONRequestBody{}
	if token != "" {
		body.ShareToken = &token
	}
	r, err := e.As(u.Token()).SubscribeCardWithResponse(ctx, cardID, &apiclient.SubscribeCardParams{XProfileId: acting}, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *Env) openShare(t testing.TB, u User, acting int64, token string) *apiclient.GetCardShareResponse {
	t.Helper()
	r, err := e.As(u.Token()).GetCardShareWithResponse(ctx, token, &apiclient.GetCardShareParams{XProfileId: acting})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func problemCodeOf(t testing.TB, body []byte) string {
	t.Helper()
	return Problem(t, body).Code
}

func TestCardShareLinks(t *testing.T) {
	e := New(t)
	f := e.newShareFixture(t, true, nil)
	tok := *f.share.Token
	if f.share.Url != e.Config.PublicBaseURL+"/c/"+tok || len(tok) != 43 || !f.share.Active || f.share.UseCount != 0 ||
		f.share.AppUrl != "bca://cards/share/"+tok || f.share.QrPngUrl != f.share.Url+"/qr.png" || f.share.VcardUrl != f.share.Url+".vcf" {
		t.Fatalf("created link: %+v", f.share)
	}
	// The database holds a hash and a sealed copy, never the token itself.
	sum := sha256.Sum256([]byte(tok))
	if n := e.Count(t, "SELECT count(*) FROM card_shares WHERE token_hash = $1 AND position($2::bytea in token_sealed) = 0", sum[:], []byte(tok)); n != 1 {
		t.Fatalf("stored token: %d rows match its hash without holding it in clear", n)
	}
	second := e.createShare(t, f.owner, f.card.Id, map[string]any{"max_uses": 5, "expires_at": time.Now().Add(48 * time.Hour)})
	if *second.Token == tok || second.MaxUses == nil || *second.MaxUses != 5 || second.ExpiresAt == nil {
		t.Fatalf("second link: %+v", second)
	}

	// Only the card's owner manages its links; the card names the acting profile, so the
	// operations take no X-Profile-Id (docs/product.md §2).
	stranger := e.SignUp(t)
	lr, err := e.As(stranger.Token()).ListCardSharesWithResponse(ctx, f.card.Id, &apiclient.ListCardSharesParams{})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "stranger lists links", lr.StatusCode(), http.StatusNotFound, lr.Body)
	rr, err := e.As(stranger.Token()).RevokeCardShareWithResponse(ctx, f.card.Id, f.share.Id)
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "stranger revokes", rr.StatusCode(), http.StatusNotFound, rr.Body)
	cr, err := e.As(stranger.Token()).CreateCardShareWithResponse(ctx, f.card.Id, apiclient.CreateCardShareJSONRequestBody{})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "stranger creates a link", cr.StatusCode(), http.StatusNotFound, cr.Body)
	// An operation that does not declare X-Profile-Id ignores it, even a stranger's profile.
	lr, err = e.As(f.owner.Token(), "X-Profile-Id", strconv.FormatInt(e.FirstProfile(t, stranger), 10)).
		ListCardSharesWithResponse(ctx, f.card.Id, &apiclient.ListCardSharesParams{})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "owner lists links with an ignored header", lr.StatusCode(), http.StatusOK, lr.Body)

	limit := 1
	lr, err = e.As(f.owner.Token()).ListCardSharesWithResponse(ctx, f.card.Id, &apiclient.ListCardSharesParams{Limit: &limit})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "list links", lr.StatusCode(), http.StatusOK, lr.Body)
	if items := lr.JSON200.Items; len(items) != 1 || items[0].Id != second.Id || lr.JSON200.NextCursor == nil || !lr.JSON200.HasMore {
		t.Fatalf("first page, newest first: %s", lr.Body)
	}
	lr, err = e.As(f.owner.Token()).ListCardSharesWithResponse(ctx, f.card.Id, &apiclient.ListCardSharesParams{Cursor: lr.JSON200.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	if items := lr.JSON200.Items; len(items) != 1 || items[0].Id != f.share.Id || items[0].Token == nil || *items[0].Token != tok || lr.JSON200.NextCursor != nil || lr.JSON200.HasMore {
		t.Fatalf("second page lists the first link again, token included: %s", lr.Body)
	}

	// A private card: refused without a link, saved through a live one.
	saver := e.SignUp(t)
	saverProf := e.FirstProfile(t, saver)
	r := e.subscribeWith(t, saver, saverProf, f.card.Id, "")
	Status(t, "private card without a link", r.StatusCode(), http.StatusNotFound, r.Body)
	o := e.openShare(t, saver, saverProf, tok)
	Status(t, "open link", o.StatusCode(), http.StatusOK, o.Body)
	if o.JSON200.Subscribed || o.JSON200.Card.Id != f.card.Id || o.JSON200.Card.Name != f.card.Name || o.JSON200.Profile.Id != f.ownerProf || *o.JSON200.Own {
		t.Fatalf("shared card before saving: %s", o.Body)
	}
	for range 2 { // idempotent; one use counted
		r = e.subscribeWith(t, saver, saverProf, f.card.Id, tok)
		Status(t, "save through the link", r.StatusCode(), http.StatusOK, r.Body)
	}
	if n := e.Count(t, "SELECT use_count FROM card_shares WHERE id = $1", f.share.Id); n != 1 {
		t.Fatalf("use_count after one save (twice): %d", n)
	}
	o = e.openShare(t, saver, saverProf, tok)
	if o.StatusCode() != http.StatusOK || !o.JSON200.Subscribed {
		t.Fatalf("shared card after saving: %d %s", o.StatusCode(), o.Body)
	}
	o = e.openShare(t, f.owner, f.ownerProf, tok)
	if o.StatusCode() != http.StatusOK || !*o.JSON200.Own {
		t.Fatalf("owner opens own link: %d %s", o.StatusCode(), o.Body)
	}
	r = e.subscribeWith(t, f.owner, f.ownerProf, f.card.Id, tok)
	Status(t, "own card through a link", r.StatusCode(), http.StatusConflict, r.Body)

	// The saver's sync file has the card and its profile, and still has the app's schema.
	sr, err := e.As(saver.Token()).RebuildSyncFileWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "rebuild sync file", sr.StatusCode(), http.StatusOK, sr.Body)
	contents := checkFile(t, sr.HTTPResponse.Header, sr.Body)
	var hasCard, hasSub, hasOwner bool
	for _, c := range contents.Cards {
		hasCard = hasCard || (c.ID == f.card.Id && c.Private)
	}
	for _, s := range contents.Subscriptions {
		hasSub = hasSub || (s.CardID == f.card.Id && s.SubscribedProfileID == saverProf)
	}
	for _, p := range contents.Profiles {
		hasOwner = hasOwner || p.ID == f.ownerProf
	}
	if !hasCard || !hasSub || !hasOwner {
		t.Fatalf("sync file: card %v, subscription %v, owner profile %v: %+v", hasCard, hasSub, hasOwner, contents)
	}
	path := filepath.Join(t.TempDir(), "saver.sqlite")
	if err := os.WriteFile(path, sr.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syncfiletest.CheckSchema(ctx, path, filepath.Join("..", "syncfile", "testdata", "android-blank.sqlite")); err != nil {
		t.Fatalf("sync file schema: %v", err)
	}

	// Revoked: idempotent for the owner, 410 for everyone else.
	for range 2 {
		rr, err = e.As(f.owner.Token()).RevokeCardShareWithResponse(ctx, f.card.Id, f.share.Id)
		if err != nil {
			t.Fatal(err)
		}
		Status(t, "revoke", rr.StatusCode(), http.StatusNoContent, rr.Body)
	}
	late := e.SignUp(t)
	lateProf := e.FirstProfile(t, late)
	before := e.Snapshot(t)
	r = e.subscribeWith(t, late, lateProf, f.card.Id, tok)
	Status(t, "save through a revoked link", r.StatusCode(), http.StatusGone, r.Body)
	if code := problemCodeOf(t, r.Body); code != "share.gone" {
		t.Fatalf("code %s", code)
	}
	o = e.openShare(t, late, lateProf, tok)
	Status(t, "open a revoked link", o.StatusCode(), http.StatusGone, o.Body)
	assertUnchanged(t, e, before)
	lr, _ = e.As(f.owner.Token()).ListCardSharesWithResponse(ctx, f.card.Id, &apiclient.ListCardSharesParams{})
	for _, s := range lr.JSON200.Items {
		if s.Id == f.share.Id && (s.Active || s.RevokedAt == nil) {
			t.Fatalf("revoked link listed as %+v", s)
		}
	}

	// Expired.
	expiring := e.createShare(t, f.owner, f.card.Id, map[string]any{"expires_at": time.Now().Add(time.Hour)})
	e.Exec(t, "UPDATE card_shares SET expires_at = now() - interval '1 second' WHERE id = $1", expiring.Id)
	r = e.subscribeWith(t, late, lateProf, f.card.Id, *expiring.Token)
	Status(t, "save through an expired link", r.StatusCode(), http.StatusGone, r.Body)

	// Used up: one use, two savers.
	once := e.createShare(t, f.owner, f.card.Id, map[string]any{"max_uses": 1})
	r = e.subscribeWith(t, late, lateProf, f.card.Id, *once.Token)
	Status(t, "first save of a one-use link", r.StatusCode(), http.StatusOK, r.Body)
	third := e.SignUp(t)
	thirdProf := e.FirstProfile(t, third)
	r = e.subscribeWith(t, third, thirdProf, f.card.Id, *once.Token)
	Status(t, "second save of a one-use link", r.StatusCode(), http.StatusGone, r.Body)

	// A link of another card does not open this one.
	otherCard := e.NewCard(t, f.owner, f.ownerProf, map[string]any{"name": "Second card", "private": true})
	r = e.subscribeWith(t, third, thirdProf, otherCard.Id, *second.Token)
	Status(t, "link of another card", r.StatusCode(), http.StatusNotFound, r.Body)

	// Not across a BLOCK, even with a live link.
	status, _, body := e.call(t, f.owner.Token(), f.ownerProf, "PUT", fmt.Sprintf("/api/v1/profiles/%d/relation", thirdProf), map[string]any{"status": "BLOCK"})
	Status(t, "owner blocks", status, http.StatusOK, body)
	r = e.subscribeWith(t, third, thirdProf, f.card.Id, *second.Token)
	Status(t, "save across a block", r.StatusCode(), http.StatusNotFound, r.Body)
	o = e.openShare(t, third, thirdProf, *second.Token)
	Status(t, "open across a block", o.StatusCode(), http.StatusNotFound, o.Body)

	// Deleting the card kills its links.
	status, _, body = e.call(t, f.owner.Token(), 0, "DELETE", fmt.Sprintf("/api/v1/cards/%d", f.card.Id), nil, "If-Match", "*")
	Status(t, "delete card", status, http.StatusNoContent, body)
	o = e.openShare(t, late, lateProf, *second.Token)
	Status(t, "open a link of a deleted card", o.StatusCode(), http.StatusGone, o.Body)
	status, _, _ = e.Raw(t, "GET", "/c/"+*second.Token, "", nil)
	Status(t, "page of a deleted card", status, http.StatusGone, nil)
}

func TestCardShareLockedCardIsDead(t *testing.T) {
	e := New(t)
	f := e.newShareFixture(t, false, nil)
	u := e.SignUp(t)
	up := e.FirstProfile(t, u)
	e.Exec(t, "UPDATE cards SET locked_at = now() WHERE id = $1", f.card.Id)
	o := e.openShare(t, u, up, *f.share.Token)
	Status(t, "open a link of a locked card", o.StatusCode(), http.StatusGone, o.Body)
	e.Exec(t, "UPDATE cards SET locked_at = NULL WHERE id = $1", f.card.Id)
	e.Exec(t, "UPDATE profiles SET locked_at = now() WHERE id = $1", f.ownerProf)
	status, _, body := e.Raw(t, "GET", "/c/"+*f.share.Token, "", nil)
	Status(t, "page of a locked profile's card", status, http.StatusGone, body)
	if bytes.Contains(body, []byte(f.card.Name)) {
		t.Fatalf("the dead-link page names the card")
	}
}

func TestCardShareRejectsBadInput(t *testing.T) {
	e := New(t)
	f := e.newShareFixture(t, true, nil)
	u := e.SignUp(t)
	up := e.FirstProfile(t, u)
	before := e.Snapshot(t)
	unknown := strings.Repeat("A", 43)
	for _, tc := range []struct {
		what, method, path string
		acting             int64
		body               any
		want               int
	}{
		{"expiry in the past", "POST", fmt.Sprintf("/api/v1/cards/%d/shares", f.card.Id), f.ownerProf, map[string]any{"expires_at": "2001-01-01T00:00:00Z"}, 400},
		{"expiry years ahead", "POST", fmt.Sprintf("/api/v1/cards/%d/shares", f.card.Id), f.ownerProf, map[string]any{"expires_at": "2099-01-01T00:00:00Z"}, 400},
		{"zero uses", "POST", fmt.Sprintf("/api/v1/cards/%d/shares", f.card.Id), f.ownerProf, map[string]any{"max_uses": 0}, 400},
		{"uses as text", "POST", fmt.Sprintf("/api/v1/cards/%d/shares", f.card.Id), f.ownerProf, map[string]any{"max_uses": "3"}, 400},
		{"unknown field", "POST", fmt.Sprintf("/api/v1/cards/%d/shares", f.card.Id), f.ownerProf, map[string]any{"token": "mine"}, 400},
		{"card of someone else", "POST", fmt.Sprintf("/api/v1/cards/%d/shares", f.card.Id), up, map[string]any{}, 404},
		{"absent card", "POST", "/api/v1/cards/999999/shares", f.ownerProf, map[string]any{}, 404},
		{"revoke absent link", "DELETE", fmt.Sprintf("/api/v1/cards/%d/shares/999999", f.card.Id), f.ownerProf, nil, 404},
		{"garbage token", "GET", "/api/v1/shares/abc", up, nil, 400},
		{"token with bad characters", "GET", "/api/v1/shares/" + strings.Repeat("*", 43), up, nil, 400},
		{"unknown token", "GET", "/api/v1/shares/" + unknown, up, nil, 404},
		{"subscribe with a garbage token", "PUT", fmt.Sprintf("/api/v1/cards/%d/subscription", f.card.Id), up, map[string]any{"share_token": "short"}, 400},
		{"subscribe with an unknown token", "PUT", fmt.Sprintf("/api/v1/cards/%d/subscription", f.card.Id), up, map[string]any{"share_token": unknown}, 404},
		{"subscribe with a numeric token", "PUT", fmt.Sprintf("/api/v1/cards/%d/subscription", f.card.Id), up, map[string]any{"share_token": 12}, 400},
	} {
		token := u.Token()
		if tc.acting == f.ownerProf {
			token = f.owner.Token()
		}
		status, _, body := e.call(t, token, tc.acting, tc.method, tc.path, tc.body)
		Status(t, tc.what, status, tc.want, body)
	}
	status, _, body := e.call(t, "", 0, "GET", "/api/v1/shares/"+*f.share.Token, nil, "X-Profile-Id", "1")
	Status(t, "anonymous getCardShare", status, http.StatusUnauthorized, body)
	assertUnchanged(t, e, before)
}

// Concurrent saves through a one-use link: exactly one wins, the link's count never passes its
// limit.
func TestCardShareUseLimitUnderConcurrency(t *testing.T) {
	e := New(t)
	f := e.newShareFixture(t, true, map[string]any{"max_uses": 1})
	const savers = 6
	users := make([]User, savers)
	profiles := make([]int64, savers)
	for i := range users {
		users[i] = e.SignUp(t)
		profiles[i] = e.FirstProfile(t, users[i])
	}
	statuses := make(chan int, savers)
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := apiclient.SubscribeCardJSONRequestBody{ShareToken: f.share.Token}
			r, err := e.As(users[i].Token()).SubscribeCardWithResponse(ctx, f.card.Id, &apiclient.SubscribeCardParams{XProfileId: profiles[i]}, body)
			if err != nil {
				t.Error(err)
				return
			}
			statuses <- r.StatusCode()
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[http.StatusOK] != 1 || counts[http.StatusGone] != savers-1 {
		t.Fatalf("statuses %v, want one 200 and %d 410", counts, savers-1)
	}
	if n := e.Count(t, "SELECT use_count FROM card_shares WHERE id = $1", f.share.Id); n != 1 {
		t.Fatalf("use_count %d", n)
	}
	if n := e.Count(t, "SELECT count(*) FROM card_subscriptions WHERE card_id = $1", f.card.Id); n != 1 {
		t.Fatalf("%d subscriptions", n)
	}
}
