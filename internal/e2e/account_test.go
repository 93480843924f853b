package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var ctx = context.Background()

func ptr[T any](v T) *T { return &v }

func TestSignUpSignInAndAccount(t *testing.T) {
	e := New(t)
	resp, err := e.Anon().SignUpWithResponse(ctx, &apiclient.SignUpParams{XClientToken: ptr("device-1")}, apiclient.SignUpJSONRequestBody{
		Id: "Jane_Doe", Nickname: "  Jane  ", Email: "Jane@Example.com", Password: Password,
		Profile: &apiclient.CreateProfileRequest{Name: "Jane at work", TeamName: ptr("ACME")},
	})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "sign up", resp.StatusCode(), http.StatusCreated, resp.Body)
	s := resp.JSON201
	if s.User.Id != "Jane_Doe" || s.User.Nickname != "Jane" || s.User.Email != "Jane@Example.com" || s.User.Role != "user" {
		t.Fatalf("account as typed, trimmed, role user: %+v", s.User)
	}
	if c := resp.HTTPResponse.Header.Get("Set-Cookie"); !strings.Contains(c, "bca_refresh="+s.RefreshToken) || !strings.Contains(c, "HttpOnly") ||
		!strings.Contains(c, "Path=/api/v1/account") || !strings.Contains(c, "SameSite=Strict") {
		t.Fatalf("refresh cookie: %q", c)
	}
	if n := e.Count(t, "SELECT count(*) FROM profiles p JOIN users u ON u.id = p.user_id WHERE u.login_id = 'Jane_Doe' AND p.name = 'Jane at work'"); n != 1 {
		t.Fatalf("first profile created with the account: %d", n)
	}
	if n := e.Count(t, "SELECT count(*) FROM sessions WHERE device_token = 'device-1'"); n != 1 {
		t.Fatalf("device token stored with the session: %d", n)
	}

	me, err := e.As(s.AccessToken).GetMyAccountWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "get my account", me.StatusCode(), http.StatusOK, me.Body)
	if me.JSON200.UserId != s.User.UserId {
		t.Fatalf("account of another user: %+v", me.JSON200)
	}

	for _, login := range []string{"jane_doe", "@JANE_DOE", "jane@example.COM"} {
		in, err := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: login, Password: Password})
		if err != nil {
			t.Fatal(err)
		}
		Status(t, "sign in as "+login, in.StatusCode(), http.StatusOK, in.Body)
		if in.JSON200.User.UserId != s.User.UserId || in.JSON200.SessionId == s.SessionId {
			t.Fatalf("sign in %s: want a new session of the same user: %+v", login, in.JSON200)
		}
	}
	unauth, err := e.Anon().GetMyAccountWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "anonymous get account", unauth.StatusCode(), http.StatusUnauthorized, unauth.Body)
	bad, err := e.As(s.AccessToken + "x").GetMyAccountWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "tampered token", bad.StatusCode(), http.StatusUnauthorized, bad.Body)
}

func TestSignUpConflictsNameEveryField(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	before := e.Snapshot(t)
	resp, err := e.Anon().SignUpWithResponse(ctx, nil, apiclient.SignUpJSONRequestBody{
		Id: strings.ToUpper(u.LoginID), Nickname: strings.ToLower(u.Session.User.Nickname), Email: apiclient.Email(strings.ToUpper(u.Email)), Password: Password,
	})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "duplicate sign up", resp.StatusCode(), http.StatusConflict, resp.Body)
	p := Problem(t, resp.Body)
	got := map[string]bool{}
	for _, f := range *p.Errors {
		got[f.Field] = true
	}
	if p.Code != "account.duplicate" || !got["id"] || !got["nickname"] || !got["email"] {
		t.Fatalf("409 must name id, nickname and email: %s", resp.Body)
	}
	assertUnchanged(t, e, before)
}

func assertUnchanged(t *testing.T, e *Env, before map[string]int) {
	t.Helper()
	after := e.Snapshot(t)
	for table, n := range before {
		if after[table] != n {
			t.Fatalf("table %s changed from %d to %d rows after a rejected request", table, n, after[table])
		}
	}
}

func TestSignUpRejectsBadInput(t *testing.T) {
	e := New(t, func(c *config.Config) { c.MaxBodyBytes = 4096 })
	e.SignUp(t)
	valid := `"id":"new_user","nickname":"New","email":"new@example.com"`
	cases := []struct {
		name, body, field string
		status            int
	}{
		{"wrong type", `{"id":42,"nickname":"New","email":"new@example.com","password":"Correct horse 42"}`, "id", 400},
		{"missing password", `{` + valid + `}`, "password", 400},
		{"unknown field", `{` + valid + `,"password":"Correct horse 42","admin":true}`, "admin", 400},
		{"bad email", `{"id":"new_user","nickname":"New","email":"not-an-email","password":"Correct horse 42"}`, "email", 400},
		{"short id", `{"id":"ab","nickname":"New","email":"new@example.com","password":"Correct horse 42"}`, "id", 400},
		{"id with space", `{"id":"a b c d","nickname":"New","email":"new@example.com","password":"Correct horse 42"}`, "id", 400},
		{"one character class", `{` + valid + `,"password":"alllowercase"}`, "password", 400},
		{"password is the id", `{` + valid + `,"password":"New_User"}`, "password", 400},
		{"short password", `{` + valid + `,"password":"Ab1"}`, "password", 400},
		{"profile name wrong type", `{` + valid + `,"password":"Correct horse 42","profile":{"name":7}}`, "profile.name", 400},
		{"profile data index not integer", `{` + valid + `,"password":"Correct horse 42","profile":{"name":"P","data":{"phone":{"index":"0","value":{}}}}}`, "profile.data.phone.index", 400},
		{"blank nickname", `{"id":"new_user","nickname":"   ","email":"new@example.com","password":"Correct horse 42"}`, "nickname", 400},
		{"not JSON", `{"id":`, "body", 400},
		{"oversize body", `{` + valid + `,"password":"Correct horse 42","description":"` + strings.Repeat("x", 5000) + `"}`, "", 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.Snapshot(t)
			status, _, body := e.Raw(t, "POST", "/api/v1/account/signup", "application/json", []byte(tc.body))
			Status(t, tc.name, status, tc.status, body)
			p := Problem(t, body)
			if tc.field != "" && !hasField(p.Errors, tc.field) {
				t.Fatalf("problem does not name %q: %s", tc.field, body)
			}
			assertUnchanged(t, e, before)
		})
	}
	status, _, body := e.Raw(t, "POST", "/api/v1/account/signup", "text/plain", []byte("hello"))
	if status != http.StatusBadRequest && status != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain body: %d %s", status, body)
	}
}

func hasField(errs *[]api.FieldError, field string) bool {
	if errs == nil {
		return false
	}
	for _, f := range *errs {
		if f.Field == field {
			return true
		}
	}
	return false
}

func TestSignInDoesNotRevealAccounts(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	unknown, err := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: "nobody_here", Password: Password})
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: "Wrong horse 42"})
	if err != nil {
		t.Fatal(err)
	}
	pu, pw := Problem(t, unknown.Body), Problem(t, wrong.Body)
	pu.RequestId, pw.RequestId = nil, nil
	if unknown.StatusCode() != http.StatusUnauthorized || unknown.StatusCode() != wrong.StatusCode() || *pu.Detail != *pw.Detail || pu.Code != pw.Code || pu.Errors != nil || pw.Errors != nil {
		t.Fatalf("unknown id and wrong password must answer alike:\n%s\n%s", unknown.Body, wrong.Body)
	}
}

func TestFailedSignInsLockTemporarily(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	signIn := func(password string) *apiclient.SignInResponse {
		r, err := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for i := range 5 {
		r := signIn("Wrong horse 42")
		Status(t, "wrong password", r.StatusCode(), http.StatusUnauthorized, r.Body)
		_ = i
	}
	locked := signIn(Password)
	Status(t, "correct password while locked", locked.StatusCode(), http.StatusForbidden, locked.Body)
	if p := Problem(t, locked.Body); p.Code != "account.temporarily_locked" || locked.HTTPResponse.Header.Get("Retry-After") == "" {
		t.Fatalf("lock must be reported with Retry-After: %s %v", locked.Body, locked.HTTPResponse.Header)
	}
	// Regression (issue 9): while locked, the answer must not tell a right password from a
	// wrong one (it was 403 for the right one and 401 for a wrong one).
	if r := signIn("Wrong horse 42"); r.StatusCode() != locked.StatusCode() || Problem(t, r.Body).Code != "account.temporarily_locked" {
		t.Fatalf("a wrong password while locked gets the same answer as the right one: %d %s", r.StatusCode(), r.Body)
	}
	// The lock is temporary: once its time has passed, the right password works and clears it.
	e.Exec(t, "UPDATE users SET signin_locked_until = now() - interval '1 second' WHERE login_id = $1", u.LoginID)
	ok := signIn(Password)
	Status(t, "after the lock expired", ok.StatusCode(), http.StatusOK, ok.Body)
	if n := e.Count(t, "SELECT failed_signins FROM users WHERE login_id = $1", u.LoginID); n != 0 {
		t.Fatalf("success must clear the counter, got %d", n)
	}
	// Back-off grows: the sixth consecutive failure locks longer than the fifth.
	for range 6 {
		signIn("Wrong horse 42")
	}
	if n := e.Count(t, "SELECT extract(epoch FROM signin_locked_until - now())::int FROM users WHERE login_id = $1", u.LoginID); n <= 60 {
		t.Fatalf("sixth failure should lock for about 2 minutes, got %ds", n)
	}
}

func TestRefreshRotatesAndDetectsReuse(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	first := u.Session.RefreshToken
	r1, err := e.Anon().RefreshSessionWithResponse(ctx, nil, apiclient.RefreshSessionJSONRequestBody{RefreshToken: &first})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "refresh", r1.StatusCode(), http.StatusOK, r1.Body)
	second := r1.JSON200.RefreshToken
	if second == first || r1.JSON200.SessionId != u.Session.SessionId {
		t.Fatalf("refresh must rotate the secret within the same session: %+v", r1.JSON200)
	}
	newAccess := r1.JSON200.AccessToken
	if me, _ := e.As(newAccess).GetMyAccountWithResponse(ctx); me.StatusCode() != http.StatusOK {
		t.Fatalf("new access token works: %d", me.StatusCode())
	}
	// The old secret again: theft. The whole session ends, the newer secret and tokens too.
	reuse, err := e.Anon().RefreshSessionWithResponse(ctx, nil, apiclient.RefreshSessionJSONRequestBody{RefreshToken: &first})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "reuse", reuse.StatusCode(), http.StatusUnauthorized, reuse.Body)
	if p := Problem(t, reuse.Body); p.Code != "account.refresh_token_reused" {
		t.Fatalf("reuse code: %s", reuse.Body)
	}
	after, err := e.Anon().RefreshSessionWithResponse(ctx, nil, apiclient.RefreshSessionJSONRequestBody{RefreshToken: &second})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "refresh after reuse", after.StatusCode(), http.StatusUnauthorized, after.Body)
	if me, _ := e.As(newAccess).GetMyAccountWithResponse(ctx); me.StatusCode() != http.StatusUnauthorized {
		t.Fatalf("access token of a revoked session: %d", me.StatusCode())
	}
}

func TestRefreshKeepsOrUpdatesDeviceToken(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	e.Exec(t, "UPDATE sessions SET device_token = 'old-device' WHERE id = $1", u.Session.SessionId)
	r, err := e.Anon().RefreshSessionWithResponse(ctx, nil, apiclient.RefreshSessionJSONRequestBody{RefreshToken: &u.Session.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "refresh without device token", r.StatusCode(), http.StatusOK, r.Body)
	if n := e.Count(t, "SELECT count(*) FROM sessions WHERE id = $1 AND device_token = 'old-device'", u.Session.SessionId); n != 1 {
		t.Fatal("a refresh without X-Client-Token must keep the stored device token")
	}
	r2, err := e.Anon().RefreshSessionWithResponse(ctx, &apiclient.RefreshSessionParams{XClientToken: ptr("new-device")},
		apiclient.RefreshSessionJSONRequestBody{RefreshToken: &r.JSON200.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "refresh with device token", r2.StatusCode(), http.StatusOK, r2.Body)
	if n := e.Count(t, "SELECT count(*) FROM sessions WHERE id = $1 AND device_token = 'new-device'", u.Session.SessionId); n != 1 {
		t.Fatal("a refresh with X-Client-Token must store it")
	}
}

func TestRefreshCookieNeedsCustomHeader(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	cookie := "bca_refresh=" + u.Session.RefreshToken
	status, _, body := e.Raw(t, "POST", "/api/v1/account/refresh", "", nil, "Cookie", cookie)
	Status(t, "cookie without header", status, http.StatusForbidden, body)
	status, hdr, body := e.Raw(t, "POST", "/api/v1/account/refresh", "", nil, "Cookie", cookie, "X-Requested-With", "bca")
	Status(t, "cookie with header", status, http.StatusOK, body)
	if !strings.Contains(hdr.Get("Set-Cookie"), "bca_refresh=") {
		t.Fatal("refresh must set the rotated cookie")
	}
}

// TestSignOutAcrossProcesses shows revocation reaching another API process that shares only
// PostgreSQL and Redis with the one that handled the sign-out.
func TestSignOutAcrossProcesses(t *testing.T) {
	e := New(t)
	other := e.StartServer(e.Config)
	u := e.SignUp(t)
	onOther := e.Client(other, u.Token())
	if me, _ := onOther.GetMyAccountWithResponse(ctx); me.StatusCode() != http.StatusOK {
		t.Fatalf("token works on the second process: %d", me.StatusCode())
	}
	out, err := e.As(u.Token()).SignOutWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "sign out", out.StatusCode(), http.StatusNoContent, out.Body)
	if me, _ := onOther.GetMyAccountWithResponse(ctx); me.StatusCode() != http.StatusUnauthorized {
		t.Fatalf("signed-out token must fail at once on the other process: %d", me.StatusCode())
	}
	if n := e.Count(t, "SELECT count(*) FROM sessions WHERE id = $1 AND revoked_at IS NOT NULL", u.Session.SessionId); n != 1 {
		t.Fatal("session row revoked")
	}
	if refresh, _ := e.Anon().RefreshSessionWithResponse(ctx, nil, apiclient.RefreshSessionJSONRequestBody{RefreshToken: &u.Session.RefreshToken}); refresh.StatusCode() != http.StatusUnauthorized {
		t.Fatalf("refresh of a signed-out session: %d", refresh.StatusCode())
	}

	// Sign out everywhere ends every session, including ones opened on the other process.
	a, _ := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: Password})
	b, _ := e.Client(other, "").SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: Password})
	all, err := e.Client(other, a.JSON200.AccessToken).SignOutEverywhereWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "sign out everywhere", all.StatusCode(), http.StatusNoContent, all.Body)
	for _, tok := range []string{a.JSON200.AccessToken, b.JSON200.AccessToken} {
		for _, s := range []*Server{e.Server, other} {
			if me, _ := e.Client(s, tok).GetMyAccountWithResponse(ctx); me.StatusCode() != http.StatusUnauthorized {
				t.Fatalf("token after sign-out everywhere: %d", me.StatusCode())
			}
		}
	}
}

func TestSessionsListAndRevoke(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	for range 3 {
		r, _ := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: Password})
		Status(t, "sign in", r.StatusCode(), http.StatusOK, r.Body)
	}
	page1, err := e.As(u.Token()).ListSessionsWithResponse(ctx, &apiclient.ListSessionsParams{Limit: ptr(2)})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "list sessions", page1.StatusCode(), http.StatusOK, page1.Body)
	if len(page1.JSON200.Items) != 2 || page1.JSON200.NextCursor == nil {
		t.Fatalf("first page of 2 with a cursor: %s", page1.Body)
	}
	page2, _ := e.As(u.Token()).ListSessionsWithResponse(ctx, &apiclient.ListSessionsParams{Limit: ptr(2), Cursor: page1.JSON200.NextCursor})
	if len(page2.JSON200.Items) != 2 || page2.JSON200.NextCursor != nil {
		t.Fatalf("second page of 2 without cursor: %s", page2.Body)
	}
	seen := map[int64]bool{}
	current := 0
	for _, s := range append(page1.JSON200.Items, page2.JSON200.Items...) {
		seen[s.SessionId] = true
		if s.Current {
			current++
		}
	}
	if len(seen) != 4 || current != 1 {
		t.Fatalf("4 distinct sessions, one current: %v", seen)
	}
	victim := page1.JSON200.Items[0].SessionId
	rv, _ := e.As(u.Token()).RevokeSessionWithResponse(ctx, victim)
	Status(t, "revoke", rv.StatusCode(), http.StatusNoContent, rv.Body)
	again, _ := e.As(u.Token()).RevokeSessionWithResponse(ctx, victim)
	Status(t, "revoke again", again.StatusCode(), http.StatusNotFound, again.Body)
	other := e.SignUp(t)
	foreign, _ := e.As(other.Token()).RevokeSessionWithResponse(ctx, u.Session.SessionId)
	Status(t, "revoke someone else's session", foreign.StatusCode(), http.StatusNotFound, foreign.Body)
	bad, _, body := e.Raw(t, "GET", "/api/v1/account/sessions?cursor=%21%21", "", nil, "Authorization", "Bearer "+u.Token())
	Status(t, "malformed cursor", bad, http.StatusBadRequest, body)
}

func TestChangePasswordRevokesOtherSessions(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	other, _ := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: Password})
	wrong, _ := e.As(u.Token()).ChangePasswordWithResponse(ctx, apiclient.ChangePasswordJSONRequestBody{CurrentPassword: "nope nope", NewPassword: "Battery staple 43"})
	Status(t, "wrong current password", wrong.StatusCode(), http.StatusForbidden, wrong.Body)
	weak, _ := e.As(u.Token()).ChangePasswordWithResponse(ctx, apiclient.ChangePasswordJSONRequestBody{CurrentPassword: Password, NewPassword: "aaaaaaaaaa"})
	Status(t, "weak new password", weak.StatusCode(), http.StatusBadRequest, weak.Body)
	ok, _ := e.As(u.Token()).ChangePasswordWithResponse(ctx, apiclient.ChangePasswordJSONRequestBody{CurrentPassword: Password, NewPassword: "Battery staple 43"})
	Status(t, "change password", ok.StatusCode(), http.StatusNoContent, ok.Body)
	if me, _ := e.As(u.Token()).GetMyAccountWithResponse(ctx); me.StatusCode() != http.StatusOK {
		t.Fatal("the current session survives a password change")
	}
	if me, _ := e.As(other.JSON200.AccessToken).GetMyAccountWithResponse(ctx); me.StatusCode() != http.StatusUnauthorized {
		t.Fatal("other sessions end with a password change")
	}
	old, _ := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: Password})
	Status(t, "old password", old.StatusCode(), http.StatusUnauthorized, old.Body)
	fresh, _ := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: "Battery staple 43"})
	Status(t, "new password", fresh.StatusCode(), http.StatusOK, fresh.Body)
}

func TestUpdateAccount(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	other := e.SignUp(t)
	c := e.As(u.Token())
	r, _ := c.UpdateMyAccountWithResponse(ctx, apiclient.UpdateMyAccountJSONRequestBody{Nickname: ptr("New Nick"), Description: ptr("hello")})
	Status(t, "update", r.StatusCode(), http.StatusOK, r.Body)
	if r.JSON200.Nickname != "New Nick" || r.JSON200.Description == nil || *r.JSON200.Description != "hello" {
		t.Fatalf("update applied: %s", r.Body)
	}
	clash, _ := c.UpdateMyAccountWithResponse(ctx, apiclient.UpdateMyAccountJSONRequestBody{Nickname: ptr(strings.ToUpper(other.Session.User.Nickname))})
	Status(t, "nickname taken", clash.StatusCode(), http.StatusConflict, clash.Body)
	noPw, _ := c.UpdateMyAccountWithResponse(ctx, apiclient.UpdateMyAccountJSONRequestBody{Id: ptr("renamed_user")})
	Status(t, "id change without password", noPw.StatusCode(), http.StatusBadRequest, noPw.Body)
	badPw, _ := c.UpdateMyAccountWithResponse(ctx, apiclient.UpdateMyAccountJSONRequestBody{Id: ptr("renamed_user"), Password: ptr("Wrong horse 1")})
	Status(t, "id change with wrong password", badPw.StatusCode(), http.StatusForbidden, badPw.Body)
	takenID, _ := c.UpdateMyAccountWithResponse(ctx, apiclient.UpdateMyAccountJSONRequestBody{Id: ptr(other.LoginID), Password: ptr(Password)})
	Status(t, "id taken", takenID.StatusCode(), http.StatusConflict, takenID.Body)
	renamed, _ := c.UpdateMyAccountWithResponse(ctx, apiclient.UpdateMyAccountJSONRequestBody{Id: ptr("renamed_user"), Password: ptr(Password), Description: ptr("")})
	Status(t, "id change", renamed.StatusCode(), http.StatusOK, renamed.Body)
	if renamed.JSON200.Id != "renamed_user" || renamed.JSON200.Description != nil {
		t.Fatalf("renamed and description cleared: %s", renamed.Body)
	}
	in, _ := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: "@renamed_user", Password: Password})
	Status(t, "sign in with the new id", in.StatusCode(), http.StatusOK, in.Body)
	empty, _ := c.UpdateMyAccountWithResponse(ctx, apiclient.UpdateMyAccountJSONRequestBody{})
	Status(t, "empty update", empty.StatusCode(), http.StatusBadRequest, empty.Body)
}

func TestAvailability(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	r, err := e.Anon().CheckAvailabilityWithResponse(ctx, apiclient.CheckAvailabilityJSONRequestBody{
		Id: ptr(strings.ToUpper(u.LoginID)), Nickname: ptr("Free Name"), Email: ptr(apiclient.Email("free@example.com")),
	})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "availability", r.StatusCode(), http.StatusOK, r.Body)
	if *r.JSON200.Id || !*r.JSON200.Nickname || !*r.JSON200.Email {
		t.Fatalf("id taken (case-insensitive), the rest free: %s", r.Body)
	}
	only, _ := e.Anon().CheckAvailabilityWithResponse(ctx, apiclient.CheckAvailabilityJSONRequestBody{Email: ptr(apiclient.Email(u.Email))})
	if only.JSON200.Email == nil || *only.JSON200.Email || only.JSON200.Id != nil {
		t.Fatalf("only the asked field: %s", only.Body)
	}
	none, _ := e.Anon().CheckAvailabilityWithResponse(ctx, apiclient.CheckAvailabilityJSONRequestBody{})
	Status(t, "nothing asked", none.StatusCode(), http.StatusBadRequest, none.Body)
}

func TestRateLimitPerAddress(t *testing.T) {
	e := New(t, func(c *config.Config) { c.RateLimit.PerAddress = 3 })
	for i := range 3 {
		r, _ := e.Anon().CheckAvailabilityWithResponse(ctx, apiclient.CheckAvailabilityJSONRequestBody{Id: ptr("some_id")})
		Status(t, "within the limit", r.StatusCode(), http.StatusOK, r.Body)
		_ = i
	}
	r, _ := e.Anon().CheckAvailabilityWithResponse(ctx, apiclient.CheckAvailabilityJSONRequestBody{Id: ptr("some_id")})
	Status(t, "over the limit", r.StatusCode(), http.StatusTooManyRequests, r.Body)
	if r.HTTPResponse.Header.Get("Retry-After") == "" {
		t.Fatal("429 needs Retry-After")
	}
}

func TestDeactivate(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	c := e.As(u.Token())
	wrong, _ := c.DeactivateAccountWithResponse(ctx, apiclient.DeactivateAccountJSONRequestBody{Password: "Wrong horse 1", Confirm: true})
	Status(t, "wrong password", wrong.StatusCode(), http.StatusForbidden, wrong.Body)
	status, _, body := e.Raw(t, "POST", "/api/v1/account/deactivate", "application/json", []byte(`{"password":"`+Password+`","confirm":false}`), "Authorization", "Bearer "+u.Token())
	Status(t, "confirm false", status, http.StatusBadRequest, body)
	ok, _ := c.DeactivateAccountWithResponse(ctx, apiclient.DeactivateAccountJSONRequestBody{Password: Password, Confirm: true, Reason: ptr("bye")})
	Status(t, "deactivate", ok.StatusCode(), http.StatusNoContent, ok.Body)
	if me, _ := c.GetMyAccountWithResponse(ctx); me.StatusCode() != http.StatusUnauthorized {
		t.Fatal("token of a deactivated account")
	}
	in, _ := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: Password})
	Status(t, "sign in after deactivation", in.StatusCode(), http.StatusForbidden, in.Body)
	if p := Problem(t, in.Body); p.Code != "account.deactivated" {
		t.Fatalf("code: %s", in.Body)
	}
	bad, _ := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: "Wrong horse 1"})
	Status(t, "wrong password after deactivation reveals nothing", bad.StatusCode(), http.StatusUnauthorized, bad.Body)
	again, _ := e.Anon().SignUpWithResponse(ctx, nil, apiclient.SignUpJSONRequestBody{Id: u.LoginID, Nickname: "Someone", Email: "someone@example.com", Password: Password})
	Status(t, "the id stays reserved", again.StatusCode(), http.StatusConflict, again.Body)
}

func TestOnlyTheCommandGrantsAdmin(t *testing.T) {
	e := New(t)
	first := e.SignUp(t)
	if first.Session.User.Role != "user" {
		t.Fatalf("the first user is not an admin: %s", first.Session.User.Role)
	}
	status, _, body := e.Raw(t, "PATCH", "/api/v1/account", "application/json", []byte(`{"role":"admin"}`), "Authorization", "Bearer "+first.Token())
	Status(t, "role is not writable", status, http.StatusBadRequest, body)
}

func TestNULCharactersAreRejected(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	before := e.Snapshot(t)
	status, _, body := e.Raw(t, "PATCH", "/api/v1/account", "application/json", []byte(`{"description":"a\u0000b"}`), "Authorization", "Bearer "+u.Token())
	Status(t, "NUL in description", status, http.StatusBadRequest, body)
	status, _, body = e.Raw(t, "POST", "/api/v1/account/availability", "application/json", []byte(`{"nickname":"x\u0000"}`))
	Status(t, "NUL in nickname", status, http.StatusBadRequest, body)
	assertUnchanged(t, e, before)
}
