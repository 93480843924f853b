package moderation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/moderation"
	"github.com/bca-app/backend/internal/testenv"
)

// Reports from users and their resolution by admins (docs/product.md §9; the report rules are
// in migrations/00009_moderation.sql and the README's "Admin and moderation").

func spam() moderation.ReportInput { return moderation.ReportInput{Reason: "spam"} }

// chatRoom is a room written straight into the tables, with this history:
//
//	0 author joins          1 author: "before you came"   2 reporter joins
//	3 author: "buy now"     4 reporter: "stop it"         5 author: a message later deleted
//	6 leaver leaves         7 author: "after you left"    8 author: an image
//
// The leaver took part from 0 to 6, the reporter from 2 on.
type chatRoom struct {
	id                       int64
	author, reporter, leaver access.Caller
}

func (w *world) chatRoom(t *testing.T) chatRoom {
	t.Helper()
	ctx := context.Background()
	r := chatRoom{author: w.actor(t, "author"), reporter: w.actor(t, "reporter"), leaver: w.actor(t, "leaver")}
	a, rep, l := r.author.ActingProfileID, r.reporter.ActingProfileID, r.leaver.ActingProfileID
	if err := w.pool.QueryRow(ctx, `INSERT INTO chat_rooms (name, owner_profile_id, created_by_profile_id, last_event_index)
		VALUES ('room', $1, $1, 8) RETURNING id`, a).Scan(&r.id); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pool.Exec(ctx, `INSERT INTO chat_participants (room_id, profile_id, first_event_index, left_at, left_event_index)
		VALUES ($1, $2, 0, NULL, NULL), ($1, $3, 2, NULL, NULL), ($1, $4, 0, now(), 6)`, r.id, a, rep, l); err != nil {
		t.Fatal(err)
	}
	var file int64
	if err := w.pool.QueryRow(ctx, `INSERT INTO files (owner_user_id, storage_key, content_type, size, md5)
		VALUES ($1, 'k/' || gen_random_uuid(), 'image/png', 1, 'x') RETURNING id`, r.author.UserID).Scan(&file); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pool.Exec(ctx, `INSERT INTO chat_events (room_id, event_index, event_type, message, caused_by_profile_id, image_file_id, deleted_at) VALUES
		($1, 0, 'PARTICIPANT_IN', '', $2, NULL, NULL),
		($1, 1, 'MESSAGE_POSTED', 'before you came', $2, NULL, NULL),
		($1, 2, 'PARTICIPANT_IN', '', $3, NULL, NULL),
		($1, 3, 'MESSAGE_POSTED', 'buy now', $2, NULL, NULL),
		($1, 4, 'MESSAGE_POSTED', 'stop it', $3, NULL, NULL),
		($1, 5, 'MESSAGE_POSTED', 'deleted', $2, NULL, now()),
		($1, 6, 'PARTICIPANT_OUT', '', $4, NULL, NULL),
		($1, 7, 'MESSAGE_POSTED', 'after you left', $2, NULL, NULL),
		($1, 8, 'MESSAGE_POSTED_IMAGE', '', $2, $5, NULL)`, r.id, a, rep, l, file); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReportProfileRules: a user reports, as its acting profile, a profile it can see; the
// report names the reporter, the target profile and its user, with details only when given.
// Reporting the same profile again while the report is open returns it (even with another
// reason); once it is closed, a new report is made. Not one's own profiles (any of the user's),
// not a locked or unknown profile (it reads as absent) — and a refusal writes nothing.
func TestReportProfileRules(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	reporter, target := w.actor(t, "reporter"), w.actor(t, "target")
	empty := ""
	r, err := w.rep.ReportProfile(ctx, reporter, target.ActingProfileID, moderation.ReportInput{Reason: "impersonation", Details: &empty})
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != moderation.ReportProfile || r.TargetKey != fmt.Sprintf("profile:%d", target.ActingProfileID) || r.ReporterUserID != reporter.UserID ||
		r.ReporterProfileID != reporter.ActingProfileID || r.TargetProfileID != target.ActingProfileID || r.TargetUserID != target.UserID ||
		r.Reason != "impersonation" || r.Details != nil || r.Status != "open" || r.TargetCardID != nil || r.TargetRoomID != nil || r.Evidence != nil {
		t.Fatalf("report %+v", r)
	}
	details := "copies my name"
	again, err := w.rep.ReportProfile(ctx, reporter, target.ActingProfileID, moderation.ReportInput{Reason: "other", Details: &details})
	if err != nil || again.ID != r.ID || again.Reason != "impersonation" || again.Details != nil {
		t.Fatalf("the same report again: %+v %v", again, err)
	}
	// Another profile of the same reporter makes its own report.
	second := access.Caller{UserID: reporter.UserID, ActingProfileID: w.profile(t, reporter.UserID, "second")}
	other, err := w.rep.ReportProfile(ctx, second, target.ActingProfileID, moderation.ReportInput{Reason: "spam", Details: &details})
	if err != nil || other.ID == r.ID || other.Details == nil || *other.Details != details {
		t.Fatalf("report from another profile: %+v %v", other, err)
	}

	ownOther := w.profile(t, reporter.UserID, "third")
	locked := w.profile(t, target.UserID, "locked")
	fresh := w.profile(t, target.UserID, "fresh")
	if _, err := w.mod.SetLock(ctx, admin, moderation.KindProfile, locked, true, "x"); err != nil {
		t.Fatal(err)
	}
	w.notes.Take()
	before := w.snapshot(t)
	if _, err := w.rep.ReportProfile(ctx, reporter, reporter.ActingProfileID, spam()); code(err) != "report.own_target" {
		t.Errorf("own acting profile: %v", err)
	}
	if _, err := w.rep.ReportProfile(ctx, reporter, ownOther, spam()); code(err) != "report.own_target" {
		t.Errorf("own other profile: %v", err)
	}
	_, err = w.rep.ReportProfile(ctx, reporter, locked, spam())
	isKind(t, "locked profile", err, domain.KindNotFound)
	_, err = w.rep.ReportProfile(ctx, reporter, 987654, spam())
	isKind(t, "unknown profile", err, domain.KindNotFound)
	// The reason list and the details' length are the table's (the API checks them first):
	// a bad one is a 400 naming the field, and stores nothing.
	_, err = w.rep.ReportProfile(ctx, reporter, fresh, moderation.ReportInput{Reason: "boring"})
	isKind(t, "a reason outside the list", err, domain.KindInvalid)
	long := strings.Repeat("é", 1001) // the limit is in characters
	_, err = w.rep.ReportProfile(ctx, reporter, fresh, moderation.ReportInput{Reason: "spam", Details: &long})
	isKind(t, "details over 1000 characters", err, domain.KindInvalid)

	w.unchanged(t, "refused reports", before)

	// Closed: the next report of the same thing is a new one.
	if _, err := w.mod.Resolve(ctx, admin, r.ID, moderation.ActionDismiss, nil); err != nil {
		t.Fatal(err)
	}
	next, err := w.rep.ReportProfile(ctx, reporter, target.ActingProfileID, spam())
	if err != nil || next.ID == r.ID || next.Status != "open" {
		t.Fatalf("report after closing: %+v %v", next, err)
	}
}

// TestReportCardRules: a card is reported when the acting profile can read it (a private card
// only by its subscribers); the report names the card, its profile and its owner. Not one's
// own card, not a locked, unreadable or unknown one, and a refusal writes nothing.
func TestReportCardRules(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	reporter, owner, subscriber := w.actor(t, "reporter"), w.actor(t, "owner"), w.actor(t, "subscriber")
	public := w.card(t, owner, "public", false)
	private := w.card(t, owner, "private", true)
	locked := w.card(t, owner, "locked", false)
	mine := w.card(t, reporter, "mine", false)
	// A subscriber of a private card reads it, so may report it.
	if _, err := w.pool.Exec(ctx, "INSERT INTO card_subscriptions (card_id, profile_id) VALUES ($1, $2)", private, subscriber.ActingProfileID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.mod.SetLock(ctx, admin, moderation.KindCard, locked, true, "x"); err != nil {
		t.Fatal(err)
	}
	r, err := w.rep.ReportCard(ctx, reporter, public, spam())
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != moderation.ReportCard || r.TargetKey != fmt.Sprintf("card:%d", public) || r.TargetCardID == nil || *r.TargetCardID != public ||
		r.TargetProfileID != owner.ActingProfileID || r.TargetUserID != owner.UserID || r.ReporterProfileID != reporter.ActingProfileID {
		t.Fatalf("report %+v", r)
	}
	if s, err := w.rep.ReportCard(ctx, subscriber, private, spam()); err != nil || s.TargetCardID == nil || *s.TargetCardID != private {
		t.Fatalf("the subscriber's report of the private card: %+v %v", s, err)
	}
	w.notes.Take()
	before := w.snapshot(t)
	if _, err := w.rep.ReportCard(ctx, reporter, mine, spam()); code(err) != "report.own_target" {
		t.Errorf("own card: %v", err)
	}
	for name, id := range map[string]int64{"private card": private, "locked card": locked, "unknown card": 987654} {
		_, err := w.rep.ReportCard(ctx, reporter, id, spam())
		isKind(t, name, err, domain.KindNotFound)
	}
	w.unchanged(t, "refused card reports", before)
}

type evidence struct {
	RoomID          int64     `json:"room_id"`
	EventIndex      int64     `json:"event_index"`
	EventType       string    `json:"event_type"`
	Message         string    `json:"message"`
	ImageFileID     *int64    `json:"image_file_id"`
	AuthorProfileID int64     `json:"author_profile_id"`
	CreatedAt       time.Time `json:"created_at"`
}

// TestReportChatMessageRules: a message is reported by a profile that could read it — it took
// part in the room when the message was posted (from its join to its leave) — and the message
// is copied into the report as evidence, image id included, which outlives the author deleting
// it. Not one's own message, not a message posted before one joined or after one left, not an
// event that is not a message, not a deleted message, not from outside the room.
func TestReportChatMessageRules(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	room := w.chatRoom(t)
	outsider := w.actor(t, "outsider")
	r, err := w.rep.ReportChatMessage(ctx, room.reporter, room.id, 3, moderation.ReportInput{Reason: "harassment"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != moderation.ReportChatMessage || r.TargetKey != fmt.Sprintf("chat_message:%d:3", room.id) || r.TargetRoomID == nil || *r.TargetRoomID != room.id ||
		r.TargetEventIndex == nil || *r.TargetEventIndex != 3 || r.TargetProfileID != room.author.ActingProfileID || r.TargetUserID != room.author.UserID || r.TargetCardID != nil {
		t.Fatalf("report %+v", r)
	}
	var ev evidence
	if err := json.Unmarshal(r.Evidence, &ev); err != nil {
		t.Fatalf("evidence %s: %v", r.Evidence, err)
	}
	if ev.RoomID != room.id || ev.EventIndex != 3 || ev.EventType != "MESSAGE_POSTED" || ev.Message != "buy now" || ev.ImageFileID != nil ||
		ev.AuthorProfileID != room.author.ActingProfileID || ev.CreatedAt.IsZero() {
		t.Errorf("evidence %s", r.Evidence)
	}
	img, err := w.rep.ReportChatMessage(ctx, room.reporter, room.id, 8, spam())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(img.Evidence, &ev); err != nil || ev.EventType != "MESSAGE_POSTED_IMAGE" || ev.ImageFileID == nil {
		t.Errorf("image evidence %s (%v)", img.Evidence, err)
	}
	// The leaver could read 3 (before it left at 6), so it may report it: its own report.
	if l, err := w.rep.ReportChatMessage(ctx, room.leaver, room.id, 3, spam()); err != nil || l.ID == r.ID {
		t.Fatalf("the leaver's report of a message it saw: %+v %v", l, err)
	}
	// The author deletes the message: the copy stays.
	if _, err := w.pool.Exec(ctx, "UPDATE chat_events SET deleted_at = now() WHERE room_id = $1 AND event_index = 3", room.id); err != nil {
		t.Fatal(err)
	}
	got, err := w.mod.GetReport(ctx, r.ID)
	if err != nil || string(got.Evidence) != string(r.Evidence) {
		t.Errorf("evidence after the deletion: %s (%v), was %s", got.Evidence, err, r.Evidence)
	}

	w.notes.Take()
	before := w.snapshot(t)
	if _, err := w.rep.ReportChatMessage(ctx, room.reporter, room.id, 4, spam()); code(err) != "report.own_target" {
		t.Errorf("own message: %v", err)
	}
	for _, c := range []struct {
		name  string
		who   access.Caller
		room  int64
		index int64
	}{
		{"posted before the reporter joined", room.reporter, room.id, 1},
		{"a join event", room.reporter, room.id, 2},
		{"a deleted message", room.reporter, room.id, 5},
		{"the message deleted after the first report", room.reporter, room.id, 3},
		{"posted after the leaver left", room.leaver, room.id, 7},
		{"a leave event", room.leaver, room.id, 6},
		{"from outside the room", outsider, room.id, 7},
		{"no acting profile", access.Caller{UserID: room.reporter.UserID}, room.id, 7},
		{"an unknown room", room.reporter, 987654, 3},
		{"past the room's last event", room.reporter, room.id, 9},
	} {
		_, err := w.rep.ReportChatMessage(ctx, c.who, c.room, c.index, spam())
		isKind(t, c.name, err, domain.KindNotFound)
	}
	w.unchanged(t, "refused message reports", before)
}

// TestReportsAreRateLimitedPerAccount: reports count against a per-account budget per minute
// (README "Admin and moderation": RATE_LIMIT_PER_ACCOUNT), whichever profile the user acts as;
// past it the answer is 429 with a Retry-After within the minute, and nothing is stored. Other
// accounts keep their own budget.
func TestReportsAreRateLimitedPerAccount(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{perMinute: 3})
	reporter, other := w.actor(t, "reporter"), w.actor(t, "other")
	second := access.Caller{UserID: reporter.UserID, ActingProfileID: w.profile(t, reporter.UserID, "second")}
	var targets []int64
	for i := range 5 {
		targets = append(targets, w.actor(t, fmt.Sprint("target", i)).ActingProfileID)
	}
	for i := range 3 {
		if _, err := w.rep.ReportProfile(ctx, reporter, targets[i], spam()); err != nil {
			t.Fatalf("report %d within the budget: %v", i+1, err)
		}
	}
	otherCard := w.card(t, other, "card", false)
	w.notes.Take()
	before := w.snapshot(t)
	for _, who := range []access.Caller{reporter, second} {
		_, err := w.rep.ReportProfile(ctx, who, targets[3], spam())
		e, ok := domain.AsError(err)
		if !ok || e.Kind != domain.KindRateLimited || e.RetryAfter <= 0 || e.RetryAfter > time.Minute {
			t.Errorf("report past the budget as profile %d: %v", who.ActingProfileID, err)
		}
	}
	if _, err := w.rep.ReportCard(ctx, reporter, otherCard, spam()); !domain.IsKind(err, domain.KindRateLimited) {
		t.Errorf("a card report past the budget: %v", err)
	}
	if _, err := w.rep.ReportChatMessage(ctx, reporter, 1, 0, spam()); !domain.IsKind(err, domain.KindRateLimited) {
		t.Errorf("a message report past the budget: %v", err)
	}
	w.unchanged(t, "reports past the budget", before)
	if _, err := w.rep.ReportProfile(ctx, other, targets[4], spam()); err != nil {
		t.Errorf("another account's report: %v", err)
	}
}

// TestReportsStayLimitedWhileRedisIsDown: without Redis the limiter counts in this process,
// and its refusal holds: a limit never fails open.
func TestReportsStayLimitedWhileRedisIsDown(t *testing.T) {
	ctx := context.Background()
	rdb := stoppedRedis(t)
	w := setup(t, options{perMinute: 1, redis: rdb})
	reporter := w.actor(t, "reporter")
	targets := []int64{w.actor(t, "target1").ActingProfileID, w.actor(t, "target2").ActingProfileID, w.actor(t, "target3").ActingProfileID}
	if _, err := w.rep.ReportProfile(ctx, reporter, targets[0], spam()); err != nil {
		t.Fatalf("the first report with Redis down: %v", err)
	}
	before := w.snapshot(t)
	for _, target := range targets[1:] {
		if _, err := w.rep.ReportProfile(ctx, reporter, target, spam()); !domain.IsKind(err, domain.KindRateLimited) {
			t.Errorf("a report past the budget of 1 with Redis down: %v; want rate limited", err)
		}
	}
	w.unchanged(t, "reports past the budget with Redis down", before)
}

// TestListMyReports: a user sees only its own reports, newest first, paged by id.
func TestListMyReports(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	reporter, other := w.actor(t, "reporter"), w.actor(t, "other")
	var mine []int64
	for i := range 3 {
		target := w.actor(t, fmt.Sprint("target", i))
		r, err := w.rep.ReportProfile(ctx, reporter, target.ActingProfileID, spam())
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, r.ID)
		if _, err := w.rep.ReportProfile(ctx, other, target.ActingProfileID, spam()); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(rs []db.Report) []int64 {
		var out []int64
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	page, err := w.rep.ListMine(ctx, reporter.UserID, 1<<62, 2)
	if err != nil || !slices.Equal(ids(page), []int64{mine[2], mine[1]}) {
		t.Fatalf("first page %v (%v), want %v", ids(page), err, []int64{mine[2], mine[1]})
	}
	page, err = w.rep.ListMine(ctx, reporter.UserID, mine[1], 2)
	if err != nil || !slices.Equal(ids(page), []int64{mine[0]}) {
		t.Fatalf("second page %v (%v)", ids(page), err)
	}
	if page, err := w.rep.ListMine(ctx, w.user(t, "nobody"), 1<<62, 10); err != nil || len(page) != 0 {
		t.Fatalf("a user without reports: %v %v", ids(page), err)
	}
}

// reported is a target with a profile, a card, live sessions and a report about each of them.
type reported struct {
	target              access.Caller
	card                int64
	profileRep, cardRep db.Report
}

func (w *world) reported(t *testing.T, reporter access.Caller, name string) reported {
	t.Helper()
	ctx := context.Background()
	r := reported{target: w.actor(t, name)}
	r.card = w.card(t, r.target, name+" card", false)
	w.sessions(t, r.target.UserID, 2)
	var err error
	if r.profileRep, err = w.rep.ReportProfile(ctx, reporter, r.target.ActingProfileID, spam()); err != nil {
		t.Fatal(err)
	}
	if r.cardRep, err = w.rep.ReportCard(ctx, reporter, r.card, spam()); err != nil {
		t.Fatal(err)
	}
	return r
}

func (w *world) liveSessions(t *testing.T, userID int64) int {
	t.Helper()
	return w.count(t, "SELECT count(*)::int FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", userID)
}

type resolveDetails struct {
	Action string  `json:"action"`
	Note   *string `json:"note"`
}

// TestResolveActions: resolving closes an open report with its action, note and admin, and one
// resolve_report audit entry; dismiss locks nothing; lock_target locks the reported profile,
// the reported card, or a message's author profile; lock_user locks the account behind the
// target (and ends its sessions). The lock's own audit entry gives "report #<id>: <note>" as
// its reason (README "Admin and moderation": resolveReport). Everything commits together.
func TestResolveActions(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	room := w.chatRoom(t)
	reporter := room.reporter
	adminID := w.user(t, "theadmin")
	adm := moderation.AdminActor(adminID, "req-resolve")
	ends := w.listen(t)
	note := "confirmed"
	empty := ""

	check := func(name string, got db.Report, err error, action string, note *string, by *int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Status != "closed" || got.ResolutionAction == nil || *got.ResolutionAction != action || got.ResolvedAt == nil ||
			(by == nil) != (got.ResolvedByUserID == nil) || (by != nil && *by != *got.ResolvedByUserID) ||
			(note == nil) != (got.ResolutionNote == nil) || (note != nil && *note != *got.ResolutionNote) {
			t.Errorf("%s: resolved report %+v", name, got)
		}
		if stored, _ := w.mod.GetReport(ctx, got.ID); stored.Status != "closed" {
			t.Errorf("%s: stored status %q", name, stored.Status)
		}
		entries := w.audits(t, moderation.KindReport, got.ID)
		if len(entries) != 1 || entries[0].Action != "resolve_report" || entries[0].Reason != nil {
			t.Fatalf("%s: report audit %v", name, actions(entries))
		}
		var d resolveDetails
		if err := json.Unmarshal(entries[0].Details, &d); err != nil || d.Action != action || (d.Note == nil) != (note == nil) {
			t.Errorf("%s: report audit details %s", name, entries[0].Details)
		}
	}
	lockReason := func(name, kind string, id int64, action, want string) {
		t.Helper()
		entries := w.audits(t, kind, id)
		if len(entries) != 1 || entries[0].Action != action || entries[0].Reason == nil || *entries[0].Reason != want {
			t.Errorf("%s: %s %d audit %v", name, kind, id, actions(entries))
			for _, e := range entries {
				if e.Reason != nil {
					t.Logf("reason %q", *e.Reason)
				}
			}
		}
	}

	// dismiss: nothing is locked, nothing bumped, nothing announced.
	a := w.reported(t, reporter, "alpha")
	w.notes.Take()
	got, err := w.mod.Resolve(ctx, adm, a.profileRep.ID, moderation.ActionDismiss, &note)
	check("dismiss", got, err, moderation.ActionDismiss, &note, &adminID)
	if w.lockedAt(t, "profiles", a.target.ActingProfileID) != nil || w.lockedAt(t, "users", a.target.UserID) != nil || w.liveSessions(t, a.target.UserID) != 2 {
		t.Error("dismiss locked something")
	}
	if len(w.audits(t, moderation.KindProfile, a.target.ActingProfileID)) != 0 {
		t.Error("dismiss wrote a lock entry")
	}
	if b := w.notes.Take(); len(b) != 0 {
		t.Errorf("dismiss bumped %v", b)
	}
	w.noEnd(t, ends, "dismiss")
	// Only that report closed: the card report stays open.
	if r, _ := w.mod.GetReport(ctx, a.cardRep.ID); r.Status != "open" {
		t.Error("dismissing one report closed another")
	}

	// lock_target of a profile report locks the profile.
	got, err = w.mod.Resolve(ctx, adm, a.cardRep.ID, moderation.ActionLockTarget, &empty)
	check("lock_target card", got, err, moderation.ActionLockTarget, &empty, &adminID)
	if w.lockedAt(t, "cards", a.card) == nil || w.lockedAt(t, "profiles", a.target.ActingProfileID) != nil {
		t.Error("lock_target of a card report did not lock exactly the card")
	}
	lockReason("lock_target card", moderation.KindCard, a.card, "lock_card", fmt.Sprintf("report #%d", a.cardRep.ID))
	if b := w.notes.Take(); len(b[a.target.UserID]) != 1 {
		t.Errorf("card lock bumps %v", b)
	}

	b := w.reported(t, reporter, "bravo")
	got, err = w.mod.Resolve(ctx, adm, b.profileRep.ID, moderation.ActionLockTarget, &note)
	check("lock_target profile", got, err, moderation.ActionLockTarget, &note, &adminID)
	if w.lockedAt(t, "profiles", b.target.ActingProfileID) == nil || w.lockedAt(t, "users", b.target.UserID) != nil || w.lockedAt(t, "cards", b.card) != nil {
		t.Error("lock_target of a profile report did not lock exactly the profile")
	}
	lockReason("lock_target profile", moderation.KindProfile, b.target.ActingProfileID, "lock_profile", fmt.Sprintf("report #%d: confirmed", b.profileRep.ID))
	if e := w.nextEnd(t, ends); e != (auth.SessionEnd{ProfileID: b.target.ActingProfileID}) {
		t.Errorf("lock_target profile announced %+v", e)
	}

	// lock_target of a message report locks the author's profile.
	m, err := w.rep.ReportChatMessage(ctx, reporter, room.id, 3, spam())
	if err != nil {
		t.Fatal(err)
	}
	got, err = w.mod.Resolve(ctx, admin, m.ID, moderation.ActionLockTarget, nil)
	check("lock_target message", got, err, moderation.ActionLockTarget, nil, nil) // an operator: no resolving user
	if w.lockedAt(t, "profiles", room.author.ActingProfileID) == nil || w.lockedAt(t, "users", room.author.UserID) != nil {
		t.Error("lock_target of a message report did not lock the author's profile")
	}
	lockReason("lock_target message", moderation.KindProfile, room.author.ActingProfileID, "lock_profile", fmt.Sprintf("report #%d", m.ID))
	if e := w.nextEnd(t, ends); e != (auth.SessionEnd{ProfileID: room.author.ActingProfileID}) {
		t.Errorf("lock_target message announced %+v", e)
	}

	// lock_user of a card report locks the card's owner and ends its sessions.
	c := w.reported(t, reporter, "charlie")
	gen := w.generation(t, c.target.UserID)
	got, err = w.mod.Resolve(ctx, adm, c.cardRep.ID, moderation.ActionLockUser, &note)
	check("lock_user", got, err, moderation.ActionLockUser, &note, &adminID)
	if w.lockedAt(t, "users", c.target.UserID) == nil || w.lockedAt(t, "cards", c.card) != nil || w.liveSessions(t, c.target.UserID) != 0 {
		t.Error("lock_user did not lock exactly the user and end its sessions")
	}
	lockReason("lock_user", moderation.KindUser, c.target.UserID, "lock_user", fmt.Sprintf("report #%d: confirmed", c.cardRep.ID))
	if e := w.nextEnd(t, ends); e != (auth.SessionEnd{UserID: c.target.UserID}) {
		t.Errorf("lock_user announced %+v", e)
	}
	if g := w.generation(t, c.target.UserID); g == "" || g == gen {
		t.Error("lock_user did not forget the cached sessions")
	}
	// A second report about the locked user's profile, resolved with lock_user: the user is
	// already locked, so the report closes without a second lock entry.
	got, err = w.mod.Resolve(ctx, adm, c.profileRep.ID, moderation.ActionLockUser, nil)
	check("lock_user again", got, err, moderation.ActionLockUser, nil, &adminID)
	if n := len(w.audits(t, moderation.KindUser, c.target.UserID)); n != 1 {
		t.Errorf("%d user audit entries after a lock_user of a locked user, want 1", n)
	}
	w.noEnd(t, ends, "lock_user of a locked user")
}

// TestALongNoteIsClippedInTheLockReason: the reason of the lock a resolution makes is "report
// #N: note", cut to the 500 bytes a reason may have at a character boundary; the resolution's
// own audit entry keeps the whole note.
func TestALongNoteIsClippedInTheLockReason(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	r := w.reported(t, w.actor(t, "reporter"), "target")
	note := strings.Repeat("é", 1000) // 2000 bytes, the most the API takes
	if _, err := w.mod.Resolve(ctx, admin, r.profileRep.ID, moderation.ActionLockTarget, &note); err != nil {
		t.Fatal(err)
	}
	entries := w.audits(t, moderation.KindProfile, r.target.ActingProfileID)
	if len(entries) != 1 || entries[0].Reason == nil {
		t.Fatalf("lock entries: %+v; want one with a reason", entries)
	}
	reason := *entries[0].Reason
	prefix := fmt.Sprintf("report #%d: éé", r.profileRep.ID)
	if len(reason) > 500 || !utf8.ValidString(reason) || !strings.HasPrefix(reason, prefix) || !strings.HasSuffix(reason, "é…") {
		t.Errorf("lock reason of %d bytes (valid UTF-8: %v): %.40q…; want at most 500 bytes, the note's start, cut after a whole character", len(reason), utf8.ValidString(reason), reason)
	}
	resolved := w.audits(t, moderation.KindReport, r.profileRep.ID)
	if len(resolved) != 1 || !strings.Contains(string(resolved[0].Details), note) {
		t.Errorf("the resolution's audit entry does not keep the whole note")
	}
}

// TestResolveRefusalsChangeNothing: an action outside the list is refused before the report is
// even looked up; an unknown report is not found; a closed report cannot be resolved again,
// whatever the action (409 report.closed), and a refused lock_user locks nobody.
func TestResolveRefusalsChangeNothing(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	reporter := w.actor(t, "reporter")
	r := w.reported(t, reporter, "target")
	if _, err := w.mod.Resolve(ctx, admin, r.profileRep.ID, moderation.ActionDismiss, nil); err != nil {
		t.Fatal(err)
	}
	ends := w.listen(t)
	w.notes.Take()
	before := w.snapshot(t)
	for _, action := range []string{"", "ban", "LOCK_USER", "lock_profile"} {
		_, err := w.mod.Resolve(ctx, admin, 987654, action, nil)
		isKind(t, "action "+action, err, domain.KindInvalid)
	}
	_, err := w.mod.Resolve(ctx, admin, 987654, moderation.ActionLockUser, nil)
	isKind(t, "unknown report", err, domain.KindNotFound)
	note := "again"
	for _, action := range []string{moderation.ActionDismiss, moderation.ActionLockTarget, moderation.ActionLockUser} {
		_, err := w.mod.Resolve(ctx, admin, r.profileRep.ID, action, &note)
		if e, ok := domain.AsError(err); !ok || e.Kind != domain.KindConflict || e.Code != "report.closed" {
			t.Errorf("%s of a closed report: %v", action, err)
		}
	}
	w.unchanged(t, "refused resolutions", before)
	w.noEnd(t, ends, "refused resolutions")
}

// TestResolveStorm: admins resolve the same report at once with conflicting actions. Exactly one
// wins; every other gets report.closed; the report, the locks, the sessions and the audit log
// all tell the winner's story and nothing of the losers' (their locks rolled back with them).
func TestResolveStorm(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	reporter := w.actor(t, "reporter")
	admins := []int64{w.user(t, "admin1"), w.user(t, "admin2"), w.user(t, "admin3")}
	all := []string{moderation.ActionDismiss, moderation.ActionLockTarget, moderation.ActionLockUser}
	// Each round's mix of actions; lock_user does the most work before it reaches the report
	// row, so one round gives it no rival action, to see a lock_user win at least once.
	rounds := [][]string{all, all, {moderation.ActionLockUser}, {moderation.ActionLockTarget, moderation.ActionLockUser}}
	const n = 12
	winners := map[string]int{}
	for round, acts := range rounds {
		r := w.reported(t, reporter, fmt.Sprint("target", round))
		rep := r.profileRep
		errs := make([]error, n)
		testenv.AtOnce(n, func(i int) {
			note := fmt.Sprint("call ", i)
			// Rotate which action the first goroutines carry, so rounds tend to differ.
			_, errs[i] = w.mod.Resolve(ctx, moderation.AdminActor(admins[i%3], note), rep.ID, acts[(i+round)%len(acts)], &note)
		})
		win := -1
		for i, err := range errs {
			switch {
			case err == nil && win >= 0:
				t.Fatalf("round %d: calls %d and %d both resolved the report", round, win, i)
			case err == nil:
				win = i
			case code(err) != "report.closed":
				t.Fatalf("round %d: call %d: %v", round, i, err)
			}
		}
		if win < 0 {
			t.Fatalf("round %d: nobody resolved the report", round)
		}
		action := acts[(win+round)%len(acts)]
		winners[action]++
		got, err := w.mod.GetReport(ctx, rep.ID)
		if err != nil || got.Status != "closed" || got.ResolutionAction == nil || *got.ResolutionAction != action ||
			got.ResolvedByUserID == nil || *got.ResolvedByUserID != admins[win%3] || got.ResolutionNote == nil || *got.ResolutionNote != fmt.Sprint("call ", win) {
			t.Fatalf("round %d: winner %d (%s), stored %+v", round, win, action, got)
		}
		if entries := w.audits(t, moderation.KindReport, rep.ID); len(entries) != 1 || entries[0].RequestID == nil || *entries[0].RequestID != fmt.Sprint("call ", win) {
			t.Fatalf("round %d: report audit %v", round, actions(entries))
		}
		profileLocked := w.lockedAt(t, "profiles", r.target.ActingProfileID) != nil
		userLocked := w.lockedAt(t, "users", r.target.UserID) != nil
		live := w.liveSessions(t, r.target.UserID)
		profileEntries := len(w.audits(t, moderation.KindProfile, r.target.ActingProfileID))
		userEntries := len(w.audits(t, moderation.KindUser, r.target.UserID))
		want := map[string][5]any{
			moderation.ActionDismiss:    {false, false, 2, 0, 0},
			moderation.ActionLockTarget: {true, false, 2, 1, 0},
			moderation.ActionLockUser:   {false, true, 0, 0, 1},
		}[action]
		if [5]any{profileLocked, userLocked, live, profileEntries, userEntries} != want {
			t.Errorf("round %d, %s won: profile locked %v, user locked %v, %d live sessions, %d profile and %d user entries; want %v",
				round, action, profileLocked, userLocked, live, profileEntries, userEntries, want)
		}
		// The other report about the same target is untouched.
		if other, _ := w.mod.GetReport(ctx, r.cardRep.ID); other.Status != "open" {
			t.Errorf("round %d: the card report was closed", round)
		}
	}
	t.Logf("winning actions: %v", winners)
}

// TestReportWhileResolving: the same reporter profile reports the same profile many times while
// an admin resolves its open report. There is never more than one open report per reporter
// profile and thing (the partial unique index of migrations/00009_moderation.sql): each call
// answers either the report being closed or the single new one.
func TestReportWhileResolving(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	reporter, target := w.actor(t, "reporter"), w.actor(t, "target")
	first, err := w.rep.ReportProfile(ctx, reporter, target.ActingProfileID, spam())
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	ids := make([]int64, n)
	errs := make([]error, n)
	var resolveErr error
	// n reports and, among them, the resolution of the first one.
	testenv.AtOnce(n+1, func(i int) {
		if i == n {
			_, resolveErr = w.mod.Resolve(ctx, admin, first.ID, moderation.ActionDismiss, nil)
			return
		}
		var r db.Report
		r, errs[i] = w.rep.ReportProfile(ctx, reporter, target.ActingProfileID, spam())
		ids[i] = r.ID
	})
	if resolveErr != nil {
		t.Fatalf("resolve: %v", resolveErr)
	}
	seen := map[int64]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
		seen[ids[i]] = true
	}
	open := w.count(t, "SELECT count(*)::int FROM reports WHERE status = 'open'")
	total := w.count(t, "SELECT count(*)::int FROM reports")
	if open > 1 || total > 2 || len(seen) > 2 {
		t.Fatalf("%d open of %d reports, answers named %d; want at most one open and one new", open, total, len(seen))
	}
	for id := range seen {
		if id != first.ID && open != 1 {
			t.Errorf("an answer names report %d, but no report is open", id)
		}
	}
	// Whatever the interleaving, a report made now returns the open one, or makes it.
	after, err := w.rep.ReportProfile(ctx, reporter, target.ActingProfileID, spam())
	if err != nil || after.ID == first.ID || after.Status != "open" {
		t.Fatalf("report after the storm: %+v %v", after, err)
	}
	if open == 1 && !seen[after.ID] {
		t.Errorf("the open report %d is none of the storm's answers %v", after.ID, seen)
	}
}

// TestReportStormIsOneReport: many identical reports at once are one row, every call answered
// with it (the idempotence of CreateReport under concurrency).
func TestReportStormIsOneReport(t *testing.T) {
	ctx := context.Background()
	w := setup(t, options{})
	reporter := w.actor(t, "reporter")
	owner := w.actor(t, "owner")
	c := w.card(t, owner, "card", false)
	const n = 16
	ids := make([]int64, n)
	errs := make([]error, n)
	testenv.AtOnce(n, func(i int) {
		var r db.Report
		r, errs[i] = w.rep.ReportCard(ctx, reporter, c, moderation.ReportInput{Reason: []string{"spam", "other", "illegal"}[i%3]})
		ids[i] = r.ID
	})
	for i, err := range errs {
		if err != nil || ids[i] != ids[0] {
			t.Fatalf("call %d: report %d (first %d), %v", i, ids[i], ids[0], err)
		}
	}
	if k := w.count(t, "SELECT count(*)::int FROM reports"); k != 1 {
		t.Fatalf("%d reports stored, want 1", k)
	}
}
