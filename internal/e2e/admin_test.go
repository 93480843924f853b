package e2e

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/moderation"
	"github.com/bca-app/backend/internal/syncfile"
	"github.com/bca-app/backend/internal/syncfile/syncfiletest"
)

// Admin and moderation (docs/product.md §9) end to end.

// moderationOf is the same moderation service bcactl uses, on the test's database and Redis.
func (e *Env) moderationOf() *moderation.Service {
	a := e.Server.App
	s, err := moderation.New(moderation.Deps{Pool: a.Pool, Redis: a.Redis, KeyPrefix: e.Config.RedisKeyPrefix, Notifier: a.SyncNotifier,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		panic(err)
	}
	return s
}

// setRole grants or revokes the admin role the way `bcactl admin` does (with its audit entry).
func (e *Env) setRole(t testing.TB, u User, admin bool) {
	t.Helper()
	if _, err := e.moderationOf().SetRole(ctx, moderation.Actor{Name: "bcactl:test"}, u.LoginID, admin); err != nil {
		t.Fatalf("set role: %v", err)
	}
}

func userID(u User) int64 { return u.Session.User.UserId }

type adminOp struct {
	name, method, path string
	body               any
	want               int
}

// adminOps is one call of every admin operation. Their order matters only in that the
// revocation of the target's sessions comes last.
func adminOps(target User, targetProfile, targetCard, reportID int64) []adminOp {
	uid := userID(target)
	reason := map[string]any{"reason": "authorisation matrix"}
	return []adminOp{
		{"listReports", "GET", "/api/v1/admin/reports?status=open", nil, 200},
		{"getReport", "GET", fmt.Sprintf("/api/v1/admin/reports/%d", reportID), nil, 200},
		{"searchUsers", "GET", "/api/v1/admin/users?q=" + target.LoginID, nil, 200},
		{"getAdminUser", "GET", fmt.Sprintf("/api/v1/admin/users/%d", uid), nil, 200},
		{"listUserProfiles", "GET", fmt.Sprintf("/api/v1/admin/users/%d/profiles", uid), nil, 200},
		{"getPipelineFigures", "GET", "/api/v1/admin/pipeline?minutes=5", nil, 200},
		{"listAuditLog", "GET", "/api/v1/admin/audit", nil, 200},
		{"lockCard", "POST", fmt.Sprintf("/api/v1/admin/cards/%d/lock", targetCard), reason, 200},
		{"unlockCard", "POST", fmt.Sprintf("/api/v1/admin/cards/%d/unlock", targetCard), reason, 200},
		{"lockProfile", "POST", fmt.Sprintf("/api/v1/admin/profiles/%d/lock", targetProfile), reason, 200},
		{"unlockProfile", "POST", fmt.Sprintf("/api/v1/admin/profiles/%d/unlock", targetProfile), reason, 200},
		{"rebuildUserSync", "POST", fmt.Sprintf("/api/v1/admin/users/%d/sync/rebuild", uid), reason, 202},
		{"resolveReport", "POST", fmt.Sprintf("/api/v1/admin/reports/%d/resolution", reportID), map[string]any{"action": "dismiss", "note": "matrix"}, 200},
		{"lockUser", "POST", fmt.Sprintf("/api/v1/admin/users/%d/lock", uid), reason, 200},
		{"unlockUser", "POST", fmt.Sprintf("/api/v1/admin/users/%d/unlock", uid), reason, 200},
		{"revokeUserSessions", "POST", fmt.Sprintf("/api/v1/admin/users/%d/sessions/revoke", uid), reason, 200},
	}
}

// TestAdminAuthorizationMatrix calls every admin operation as anonymous, a plain user, the
// target user, an admin whose role was revoked during its session, and an admin. Only the
// admin gets an answer; everyone else gets the 404 of a path that does not exist, and nothing
// is written.
func TestAdminAuthorizationMatrix(t *testing.T) {
	e := New(t)
	plain, target, admin, demoted := e.newChatter(t), e.newChatter(t), e.SignUp(t), e.SignUp(t)
	e.setRole(t, admin, true)
	e.setRole(t, demoted, true)
	card := e.NewCard(t, target.User, target.Profile, map[string]any{"name": "target card"})
	r, err := e.As(plain.Token()).ReportProfileWithResponse(ctx, target.Profile, &apiclient.ReportProfileParams{XProfileId: plain.Profile},
		apiclient.ReportRequest{Reason: apiclient.Spam})
	if err != nil || r.JSON202 == nil {
		t.Fatalf("report: %v %s", err, r.Body)
	}
	// The demoted admin works as admin with this very token until the role is revoked.
	code, _, body := e.call(t, demoted.Token(), 0, "GET", "/api/v1/admin/audit", nil)
	Status(t, "admin before demotion", code, http.StatusOK, body)
	e.setRole(t, demoted, false)

	callers := []struct {
		name  string
		token string
	}{{"anonymous", ""}, {"plain user", plain.Token()}, {"target user", target.Token()}, {"revoked admin", demoted.Token()}, {"bad token", "not-a-token"}}
	for _, op := range adminOps(target.User, target.Profile, card.Id, r.JSON202.Id) {
		before := e.Snapshot(t)
		for _, c := range callers {
			code, _, body := e.call(t, c.token, 0, op.method, op.path, op.body)
			if code != http.StatusNotFound {
				t.Errorf("%s as %s: status %d, want 404: %s", op.name, c.name, code, body)
			} else if p := Problem(t, body); p.Code != "resource.not_found" {
				t.Errorf("%s as %s: code %q", op.name, c.name, p.Code)
			}
		}
		// A non-admin's garbage is not even validated: the surface is not advertised.
		code, _, body := e.call(t, plain.Token(), 0, op.method, op.path+"&limit=abc", map[string]any{"bogus": true})
		if code != http.StatusNotFound {
			t.Errorf("%s with bad input as plain user: status %d: %s", op.name, code, body)
		}
		if after := e.Snapshot(t); !maps_equal(before, after) {
			t.Errorf("%s: refused calls changed the database: %v → %v", op.name, before, after)
		}
		code, _, body = e.call(t, admin.Token(), 0, op.method, op.path, op.body)
		if code != op.want {
			t.Errorf("%s as admin: status %d, want %d: %s", op.name, code, op.want, body)
		}
	}
	// The role changes themselves are audited, with the operator as actor.
	if n := e.Count(t, "SELECT count(*)::int FROM audit_log WHERE actor = 'bcactl:test' AND action IN ('grant_admin', 'revoke_admin')"); n != 3 {
		t.Errorf("%d role-change audit entries, want 3", n)
	}
}

func maps_equal(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// syncContents rebuilds what the worker would for u (its file is stale after the change) and
// downloads it; the file is checked against the Android app's blank schema.
func (e *Env) syncContents(t *testing.T, u User) syncfile.Contents {
	t.Helper()
	if _, err := e.Server.App.Sync.Sync(ctx, userID(u)); err != nil {
		t.Fatalf("build sync file: %v", err)
	}
	g := syncGet(t, e.As(u.Token()), "")
	Status(t, "get sync file", g.StatusCode(), http.StatusOK, g.Body)
	if g.HTTPResponse.Header.Get("Sync-Pending") != "false" {
		t.Fatalf("the file is not current after a build: %v", g.HTTPResponse.Header)
	}
	path := filepath.Join(t.TempDir(), "user_db.sqlite")
	if err := os.WriteFile(path, g.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syncfiletest.CheckSchema(ctx, path, filepath.Join("..", "syncfile", "testdata", "android-blank.sqlite")); err != nil {
		t.Fatalf("sync file schema: %v", err)
	}
	return checkFile(t, g.HTTPResponse.Header, g.Body)
}

func hasProfile(c syncfile.Contents, id int64) bool {
	return slices.ContainsFunc(c.Profiles, func(p syncfile.Profile) bool { return p.ID == id })
}

func hasCard(c syncfile.Contents, id int64) bool {
	return slices.ContainsFunc(c.Cards, func(k syncfile.Card) bool { return k.ID == id })
}

func wantedVersions(t *testing.T, e *Env, users ...User) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, u := range users {
		out[u.LoginID] = e.Count(t, "SELECT coalesce((SELECT wanted_version FROM sync_states WHERE user_id = $1), 0)::int", userID(u))
	}
	return out
}

// TestReportFlowsToLock: a user reports a card, a profile and a chat message; the reports are
// idempotent and only the reporter sees them; an admin resolves the card report with a lock
// and locks the profile; both vanish from the reporter's reads and sync file (and only the
// affected users' files are bumped); unlocking restores them; every action is in the audit log,
// which nothing can change.
func TestReportFlowsToLock(t *testing.T) {
	e := New(t)
	reporter, author, bystander, other := e.newChatter(t), e.newChatter(t), e.newChatter(t), e.newChatter(t)
	adminUser := e.SignUp(t)
	e.setRole(t, adminUser, true)
	adm := e.As(adminUser.Token())
	rc := e.As(reporter.Token())
	acting := reporter.Profile

	// The author's public profile (a second one: the first stays untouched) and a public card,
	// followed and saved by the reporter.
	prof := e.NewProfile(t, author.User, map[string]any{"name": "Spam Shop", "private": false})
	card := e.NewCard(t, author.User, prof.Id, map[string]any{"name": "Cheap watches"})
	e.relate(t, reporter, chatter{User: author.User, Profile: prof.Id}, "FOLLOW")
	sub, err := rc.SubscribeCardWithResponse(ctx, card.Id, &apiclient.SubscribeCardParams{XProfileId: acting}, apiclient.SubscribeCardJSONRequestBody{})
	if err != nil || sub.StatusCode() >= 300 {
		t.Fatalf("subscribe: %v %d %s", err, sub.StatusCode(), sub.Body)
	}
	before := e.syncContents(t, reporter.User)
	if !hasProfile(before, prof.Id) || !hasCard(before, card.Id) {
		t.Fatalf("the reporter's file lacks the profile or card before any lock")
	}

	// Reports: 202, idempotent while open.
	details := "Sends the same advert to everyone"
	cr, err := rc.ReportCardWithResponse(ctx, card.Id, &apiclient.ReportCardParams{XProfileId: acting}, apiclient.ReportRequest{Reason: apiclient.Spam, Details: &details})
	if err != nil || cr.JSON202 == nil {
		t.Fatalf("report card: %v %s", err, cr.Body)
	}
	again, err := rc.ReportCardWithResponse(ctx, card.Id, &apiclient.ReportCardParams{XProfileId: acting}, apiclient.ReportRequest{Reason: apiclient.Other})
	if err != nil || again.JSON202 == nil || again.JSON202.Id != cr.JSON202.Id {
		t.Fatalf("second report of the same card is not the first one: %v %s", err, again.Body)
	}
	pr, err := rc.ReportProfileWithResponse(ctx, prof.Id, &apiclient.ReportProfileParams{XProfileId: acting}, apiclient.ReportRequest{Reason: apiclient.Impersonation})
	if err != nil || pr.JSON202 == nil {
		t.Fatalf("report profile: %v %s", err, pr.Body)
	}
	// A chat message, deleted by its author after the report: the evidence survives.
	room := e.newRoom(t, author, nil, reporter)
	msg := e.post(t, author, room.Room.Id, "buy my watches")
	mr, err := rc.ReportChatMessageWithResponse(ctx, room.Room.Id, msg.EventIndex, &apiclient.ReportChatMessageParams{XProfileId: acting}, apiclient.ReportRequest{Reason: apiclient.Harassment})
	if err != nil || mr.JSON202 == nil || mr.JSON202.TargetProfileId != author.Profile {
		t.Fatalf("report message: %v %s", err, mr.Body)
	}
	code, _, body := author.do(t, e, "DELETE", fmt.Sprintf("/api/v1/chats/%d/events/%d", room.Room.Id, msg.EventIndex), nil)
	if code >= 300 {
		t.Fatalf("delete message: %d %s", code, body)
	}
	// Own things cannot be reported.
	own, _ := e.As(author.Token()).ReportCardWithResponse(ctx, card.Id, &apiclient.ReportCardParams{XProfileId: author.Profile}, apiclient.ReportRequest{Reason: apiclient.Spam})
	Status(t, "report own card", own.StatusCode(), http.StatusBadRequest, own.Body)

	// The reporter sees its three reports, nobody else sees them, and the evidence is not in them.
	mine, err := rc.ListMyReportsWithResponse(ctx, &apiclient.ListMyReportsParams{})
	if err != nil || mine.JSON200 == nil || len(mine.JSON200.Items) != 3 {
		t.Fatalf("my reports: %v %s", err, mine.Body)
	}
	if strings.Contains(string(mine.Body), "buy my watches") {
		t.Fatalf("the reporter's list carries the evidence: %s", mine.Body)
	}
	theirs, err := e.As(other.Token()).ListMyReportsWithResponse(ctx, &apiclient.ListMyReportsParams{})
	if err != nil || theirs.JSON200 == nil || len(theirs.JSON200.Items) != 0 {
		t.Fatalf("another user's reports: %v %s", err, theirs.Body)
	}
	code, _, _ = e.call(t, reporter.Token(), 0, "GET", fmt.Sprintf("/api/v1/admin/reports/%d", mr.JSON202.Id), nil)
	Status(t, "reporter reads the admin copy", code, http.StatusNotFound, nil)

	// The admin's queue: open card reports, then the message report with its evidence.
	open, kind := apiclient.ListReportsParamsStatusOpen, apiclient.ReportKindCard
	q, err := adm.ListReportsWithResponse(ctx, &apiclient.ListReportsParams{Status: &open, Kind: &kind})
	if err != nil || q.JSON200 == nil || len(q.JSON200.Items) != 1 || q.JSON200.Items[0].Id != cr.JSON202.Id {
		t.Fatalf("queue: %v %s", err, q.Body)
	}
	ev, err := adm.GetReportWithResponse(ctx, mr.JSON202.Id)
	if err != nil || ev.JSON200 == nil || ev.JSON200.Evidence == nil || ev.JSON200.Evidence.Message != "buy my watches" {
		t.Fatalf("evidence after the author deleted the message: %v %s", err, ev.Body)
	}

	// Resolve the card report with a lock; only the card's audience is bumped.
	versions := wantedVersions(t, e, reporter.User, author.User, bystander.User)
	note := "confirmed spam"
	res, err := adm.ResolveReportWithResponse(ctx, cr.JSON202.Id, apiclient.ResolveReportRequest{Action: apiclient.ResolveReportRequestActionLockTarget, Note: &note})
	if err != nil || res.JSON200 == nil || res.JSON200.Status != apiclient.AdminReportStatusClosed {
		t.Fatalf("resolve: %v %s", err, res.Body)
	}
	after := wantedVersions(t, e, reporter.User, author.User, bystander.User)
	if after[reporter.LoginID] <= versions[reporter.LoginID] || after[author.LoginID] <= versions[author.LoginID] || after[bystander.LoginID] != versions[bystander.LoginID] {
		t.Fatalf("outbox bumps of a card lock: before %v after %v (the bystander must not move)", versions, after)
	}
	again2, _ := adm.ResolveReportWithResponse(ctx, cr.JSON202.Id, apiclient.ResolveReportRequest{Action: apiclient.ResolveReportRequestActionDismiss})
	Status(t, "resolve a closed report", again2.StatusCode(), http.StatusConflict, again2.Body)

	gc, _ := rc.GetCardWithResponse(ctx, card.Id, &apiclient.GetCardParams{XProfileId: &acting})
	Status(t, "reporter reads the locked card", gc.StatusCode(), http.StatusNotFound, gc.Body)
	if c := e.syncContents(t, reporter.User); hasCard(c, card.Id) || !hasProfile(c, prof.Id) {
		t.Fatalf("after the card lock the reporter's file still has the card, or lost the profile")
	}

	// Lock the profile directly.
	lp, err := adm.LockProfileWithResponse(ctx, prof.Id, apiclient.AdminActionRequest{Reason: "report #" + fmt.Sprint(pr.JSON202.Id)})
	if err != nil || lp.JSON200 == nil || !lp.JSON200.Locked || !lp.JSON200.Changed {
		t.Fatalf("lock profile: %v %s", err, lp.Body)
	}
	gp, _ := rc.GetProfileWithResponse(ctx, prof.Id, &apiclient.GetProfileParams{XProfileId: &acting})
	Status(t, "reporter reads the locked profile", gp.StatusCode(), http.StatusNotFound, gp.Body)
	if c := e.syncContents(t, reporter.User); hasProfile(c, prof.Id) {
		t.Fatalf("after the profile lock the reporter's file still has the profile")
	}
	// The admin still sees it, locked, among the author's profiles.
	lst, err := adm.ListUserProfilesWithResponse(ctx, userID(author.User), &apiclient.ListUserProfilesParams{})
	if err != nil || lst.JSON200 == nil || !slices.ContainsFunc(lst.JSON200.Items, func(p apiclient.AdminProfile) bool { return p.Id == prof.Id && p.Locked }) {
		t.Fatalf("admin's list of the author's profiles: %v %s", err, lst.Body)
	}

	// Unlocking restores both.
	up, _ := adm.UnlockProfileWithResponse(ctx, prof.Id, apiclient.AdminActionRequest{Reason: "appeal granted"})
	Status(t, "unlock profile", up.StatusCode(), http.StatusOK, up.Body)
	uc, _ := adm.UnlockCardWithResponse(ctx, card.Id, apiclient.AdminActionRequest{Reason: "appeal granted"})
	Status(t, "unlock card", uc.StatusCode(), http.StatusOK, uc.Body)
	if again, _ := adm.UnlockCardWithResponse(ctx, card.Id, apiclient.AdminActionRequest{Reason: "twice"}); again.JSON200 == nil || again.JSON200.Changed {
		t.Fatalf("a second unlock is not a no-op: %s", again.Body)
	}
	gc, _ = rc.GetCardWithResponse(ctx, card.Id, &apiclient.GetCardParams{XProfileId: &acting})
	Status(t, "reporter reads the unlocked card", gc.StatusCode(), http.StatusOK, gc.Body)
	if c := e.syncContents(t, reporter.User); !hasProfile(c, prof.Id) || !hasCard(c, card.Id) {
		t.Fatalf("after unlocking the reporter's file lacks the profile or the card")
	}

	// The audit log has every action, with the admin, the reason and the request id.
	cardKind := apiclient.ListAuditLogParamsTargetKindCard
	al, err := adm.ListAuditLogWithResponse(ctx, &apiclient.ListAuditLogParams{TargetKind: &cardKind, TargetId: &card.Id})
	if err != nil || al.JSON200 == nil {
		t.Fatalf("audit log: %v %s", err, al.Body)
	}
	var actions []string
	for _, a := range al.JSON200.Items {
		actions = append(actions, a.Action)
		if a.ActorUserId == nil || *a.ActorUserId != userID(adminUser) || a.RequestId == nil || *a.RequestId == "" || a.Reason == nil {
			t.Errorf("audit entry without actor, request id or reason: %+v", a)
		}
	}
	if strings.Join(actions, ",") != "unlock_card,lock_card" {
		t.Fatalf("audit entries of the card: %v", actions)
	}
	if n := e.Count(t, "SELECT count(*)::int FROM audit_log WHERE action IN ('lock_profile', 'unlock_profile', 'resolve_report')"); n != 3 {
		t.Fatalf("%d profile lock/unlock/resolve entries, want 3", n)
	}
	// No API changes the log (there is no such operation), and the database refuses too.
	for _, m := range []string{"DELETE", "PUT", "PATCH"} {
		code, _, _ := e.call(t, adminUser.Token(), 0, m, "/api/v1/admin/audit", nil)
		if code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
			t.Errorf("%s /admin/audit: status %d", m, code)
		}
	}
	entries := e.Count(t, "SELECT count(*)::int FROM audit_log")
	for _, stmt := range []string{"UPDATE audit_log SET reason = 'edited'", "DELETE FROM audit_log", "TRUNCATE audit_log"} {
		if _, err := e.Server.App.Pool.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", stmt, err)
		}
	}
	if n := e.Count(t, "SELECT count(*)::int FROM audit_log"); n != entries {
		t.Fatalf("audit log changed: %d → %d entries", entries, n)
	}
}

// TestReportsAreRateLimited: reports count against a per-account budget.
func TestReportsAreRateLimited(t *testing.T) {
	e := New(t, func(c *config.Config) { c.RateLimit.PerAccount = 3 })
	reporter, target := e.newChatter(t), e.newChatter(t)
	var last *apiclient.ReportProfileResponse
	for range 4 {
		r, err := e.As(reporter.Token()).ReportProfileWithResponse(ctx, target.Profile, &apiclient.ReportProfileParams{XProfileId: reporter.Profile},
			apiclient.ReportRequest{Reason: apiclient.Spam})
		if err != nil {
			t.Fatal(err)
		}
		last = r
	}
	Status(t, "fourth report in a minute", last.StatusCode(), http.StatusTooManyRequests, last.Body)
	if last.HTTPResponse.Header.Get("Retry-After") == "" {
		t.Fatalf("429 without Retry-After")
	}
	if n := e.Count(t, "SELECT count(*)::int FROM reports"); n != 1 {
		t.Fatalf("%d reports stored, want 1 (idempotent)", n)
	}
}

// TestLockingAUserClosesItsStreamOnAnotherServer: the stream is held on a second API process;
// the lock is made on the first; the stream ends within two seconds and the token stops working.
func TestLockingAUserClosesItsStreamOnAnotherServer(t *testing.T) {
	e := New(t)
	second := e.StartServer(e.Config)
	u := e.newChatter(t)
	adminUser := e.SignUp(t)
	e.setRole(t, adminUser, true)
	stream := e.openStream(t, second, u, "")
	if stream.ended(200 * time.Millisecond) {
		t.Fatalf("the stream ended before the lock")
	}
	r, err := e.As(adminUser.Token()).LockUserWithResponse(ctx, userID(u.User), apiclient.AdminActionRequest{Reason: "abuse"})
	if err != nil || r.JSON200 == nil || !r.JSON200.Locked {
		t.Fatalf("lock user: %v %s", err, r.Body)
	}
	if !stream.ended(2 * time.Second) {
		t.Fatalf("the locked user's stream on the other server is still open after 2 s")
	}
	code, _, body := e.call(t, u.Token(), 0, "GET", "/api/v1/account", nil)
	Status(t, "locked user's request", code, http.StatusUnauthorized, body)
	if n := e.Count(t, "SELECT count(*)::int FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", userID(u.User)); n != 0 {
		t.Fatalf("%d live sessions after the lock", n)
	}
}

// TestAdminBadInput: unknown ids, wrong kinds, absurd page sizes and malformed bodies give a
// 4xx problem and change nothing.
func TestAdminBadInput(t *testing.T) {
	e := New(t)
	adminUser := e.SignUp(t)
	e.setRole(t, adminUser, true)
	u := e.newChatter(t)
	reason := map[string]any{"reason": "x"}
	cases := []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"unknown user lock", "POST", "/api/v1/admin/users/999999/lock", reason, 404},
		{"unknown profile lock", "POST", "/api/v1/admin/profiles/999999/lock", reason, 404},
		{"unknown card unlock", "POST", "/api/v1/admin/cards/999999/unlock", reason, 404},
		{"unknown report", "GET", "/api/v1/admin/reports/999999", nil, 404},
		{"unknown report resolve", "POST", "/api/v1/admin/reports/999999/resolution", map[string]any{"action": "dismiss"}, 404},
		{"unknown user revoke", "POST", "/api/v1/admin/users/999999/sessions/revoke", reason, 404},
		{"unknown user rebuild", "POST", "/api/v1/admin/users/999999/sync/rebuild", reason, 404},
		{"unknown user profiles", "GET", "/api/v1/admin/users/999999/profiles", nil, 404},
		{"id zero", "POST", "/api/v1/admin/users/0/lock", reason, 400},
		{"id not a number", "GET", "/api/v1/admin/users/abc", nil, 400},
		{"wrong report kind", "GET", "/api/v1/admin/reports?kind=video", nil, 400},
		{"wrong status", "GET", "/api/v1/admin/reports?status=pending", nil, 400},
		{"wrong audit kind", "GET", "/api/v1/admin/audit?target_kind=room", nil, 400},
		{"huge page", "GET", "/api/v1/admin/audit?limit=100000", nil, 400},
		{"zero page", "GET", "/api/v1/admin/reports?limit=0", nil, 400},
		{"bad cursor", "GET", "/api/v1/admin/reports?cursor=zzz", nil, 400},
		{"search without q", "GET", "/api/v1/admin/users", nil, 400},
		{"blank search", "GET", "/api/v1/admin/users?q=%20%20", nil, 400},
		{"lock without reason", "POST", fmt.Sprintf("/api/v1/admin/users/%d/lock", userID(u.User)), map[string]any{}, 400},
		{"lock with empty reason", "POST", fmt.Sprintf("/api/v1/admin/profiles/%d/lock", u.Profile), map[string]any{"reason": ""}, 400},
		{"unknown field", "POST", fmt.Sprintf("/api/v1/admin/profiles/%d/lock", u.Profile), map[string]any{"reason": "x", "force": true}, 400},
		{"wrong resolve action", "POST", "/api/v1/admin/reports/1/resolution", map[string]any{"action": "ban"}, 400},
		{"lag window too long", "GET", "/api/v1/admin/pipeline?minutes=1000", nil, 400},
		{"report: unknown profile", "POST", "/api/v1/profiles/999999/reports", map[string]any{"reason": "spam"}, 404},
		{"report: wrong reason", "POST", fmt.Sprintf("/api/v1/profiles/%d/reports", u.Profile), map[string]any{"reason": "boring"}, 400},
		{"report: unknown message", "POST", "/api/v1/chats/999999/events/0/reports", map[string]any{"reason": "spam"}, 404},
		{"report: details too long", "POST", "/api/v1/cards/1/reports", map[string]any{"reason": "spam", "details": strings.Repeat("x", 1001)}, 400},
	}
	before := e.Snapshot(t)
	for _, c := range cases {
		token, acting := adminUser.Token(), int64(0)
		if strings.Contains(c.path, "/reports") && !strings.HasPrefix(c.path, "/api/v1/admin/") {
			other := e.newChatter(t)
			before = e.Snapshot(t)
			token, acting = other.Token(), other.Profile
		}
		code, _, body := e.call(t, token, acting, c.method, c.path, c.body)
		if code != c.want {
			t.Errorf("%s: status %d, want %d: %s", c.name, code, c.want, body)
		}
		if after := e.Snapshot(t); !maps_equal(before, after) {
			t.Errorf("%s changed the database: %v → %v", c.name, before, after)
		}
	}
}

// TestAdminSearchAndFigures: the user search is a case-insensitive prefix of id, nickname or
// email with paging; the pipeline figures count the backlog and show up on /metrics.
func TestAdminSearchAndFigures(t *testing.T) {
	e := New(t)
	adminUser := e.SignUp(t)
	e.setRole(t, adminUser, true)
	adm := e.As(adminUser.Token())
	var made []User
	for range 3 {
		made = append(made, e.SignUp(t))
	}
	// Login ids are user_<n>: the upper-case prefix of one finds exactly it (and maybe longer ids).
	q := strings.ToUpper(made[1].LoginID)
	r, err := adm.SearchUsersWithResponse(ctx, &apiclient.SearchUsersParams{Q: q})
	if err != nil || r.JSON200 == nil || !slices.ContainsFunc(r.JSON200.Items, func(u apiclient.AdminUser) bool { return u.UserId == userID(made[1]) }) {
		t.Fatalf("search %q: %v %s", q, err, r.Body)
	}
	for _, u := range r.JSON200.Items {
		if !strings.HasPrefix(strings.ToLower(u.Id), strings.ToLower(q)) {
			t.Errorf("search %q found %q", q, u.Id)
		}
	}
	// By e-mail prefix, paged one at a time over every test account ("user…@example.com").
	one := 1
	seen := map[int64]bool{}
	var cursor *string
	for range 10 {
		p, err := adm.SearchUsersWithResponse(ctx, &apiclient.SearchUsersParams{Q: "USER", Limit: &one, Cursor: cursor})
		if err != nil || p.JSON200 == nil || len(p.JSON200.Items) > 1 {
			t.Fatalf("page: %v %s", err, p.Body)
		}
		for _, u := range p.JSON200.Items {
			seen[u.UserId] = true
		}
		if cursor = p.JSON200.NextCursor; cursor == nil {
			break
		}
	}
	if len(seen) != 4 {
		t.Fatalf("paging found %d users, want 4", len(seen))
	}

	// Backlog: a user with a built file changes a profile; the file is owed until built.
	if _, err := e.Server.App.Sync.Sync(ctx, userID(made[0])); err != nil {
		t.Fatal(err)
	}
	e.NewProfile(t, made[0], map[string]any{"name": "A second profile"})
	f, err := adm.GetPipelineFiguresWithResponse(ctx, &apiclient.GetPipelineFiguresParams{})
	if err != nil || f.JSON200 == nil {
		t.Fatalf("figures: %v %s", err, f.Body)
	}
	stale := int64(e.Count(t, "SELECT count(*)::int FROM sync_states WHERE built_version < wanted_version"))
	if f.JSON200.OutboxDepth != stale || stale == 0 || f.JSON200.QueueDepth > stale || f.JSON200.OldestPendingSeconds <= 0 {
		t.Fatalf("figures %+v, %d stale users", f.JSON200, stale)
	}
	// The build records a lag sample and empties the backlog.
	if _, err := e.Server.App.Sync.Sync(ctx, userID(made[0])); err != nil {
		t.Fatal(err)
	}
	f, _ = adm.GetPipelineFiguresWithResponse(ctx, &apiclient.GetPipelineFiguresParams{})
	if f.JSON200 == nil || f.JSON200.Lag.Samples < 1 || f.JSON200.Lag.P99Seconds == nil || f.JSON200.OutboxDepth != stale-1 {
		t.Fatalf("figures after the build: %s", f.Body)
	}
	resp, err := http.Get(e.Server.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	for _, want := range []string{fmt.Sprintf("bca_pipeline_outbox_depth %d", stale-1), "bca_pipeline_sync_lag_seconds{quantile=\"0.99\"}", "bca_pipeline_workers 0"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

}
