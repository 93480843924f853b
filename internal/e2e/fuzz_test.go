package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/internal/config"
)

// Fuzz targets for the two anonymous JSON bodies every client sends first. Run the seeds with
// `go test`; fuzz with
//
//	go run ./cmd/bcactl with-services -- go test -run '^$' -fuzz FuzzSignUpBody -fuzztime 20s ./internal/e2e/
//
// Each fuzz process starts one server (own database) before f.Fuzz; iterations share it.

// fuzzEnv is a server for fuzzing: rate limits out of the way (the fuzzer sends thousands of
// requests from one address) and a small JSON body limit, so oversize bodies are exercised too.
func fuzzEnv(f *testing.F) *Env {
	f.Helper()
	return New(quietTB{f}, func(c *config.Config) {
		c.RateLimit = config.RateLimits{PerAddress: 1 << 30, PerAccount: 1 << 30}
		c.MaxBodyBytes = 4096
		c.Uploads.PerHour = 1 << 30
	})
}

// quietTB is the server's test handle while fuzzing. In verbose runs the harness echoes every
// server log line with t.Log, and the fuzz engine panics when the *testing.F logs from inside
// the fuzz target. The lines still reach the server's LogSink.
type quietTB struct{ testing.TB }

func (quietTB) Log(...any)          {}
func (quietTB) Logf(string, ...any) {}

// reportingTo returns a view of e that reports spec mismatches to t: inside the fuzz target only
// the iteration's *testing.T may fail, never the *testing.F the server was started with.
func (e *Env) reportingTo(t testing.TB) *Env {
	view := *e
	view.t = t
	return &view
}

// checkAnswer holds any answer to the rules for bad input: no 5xx, and every refusal is a
// problem document with a stable dotted code and the status it is sent with.
func checkAnswer(t *testing.T, body []byte, status int, header http.Header, resp []byte) {
	t.Helper()
	if status >= 500 {
		t.Fatalf("status %d for body %q: %s", status, body, resp)
	}
	if status < 300 {
		return
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("status %d with Content-Type %q for body %q: %s", status, ct, body, resp)
	}
	var p api.Problem
	if err := json.Unmarshal(resp, &p); err != nil {
		t.Fatalf("status %d: not a problem document (%v) for body %q: %s", status, err, body, resp)
	}
	if p.Status != status || !problemCode.MatchString(p.Code) {
		t.Fatalf("status %d: problem status %d, code %q for body %q", status, p.Status, p.Code, body)
	}
}

func FuzzSignUpBody(f *testing.F) {
	seeds := []string{
		`{"id":"fuzz_user","nickname":"Fuzz","email":"fuzz@example.com","password":"Correct horse 42"}`,
		`{"id":"fuzz_two","nickname":"Fuzz Two","email":"two@example.com","password":"Correct horse 42","description":"hi","profile":{"name":"P","team_name":"T","private":false,"data":{"phone":{"index":0,"value":{"mobile":{"index":0,"value":"+82 10"}}}}}}`,
		`{"id":"Ünïcode","nickname":"Ａ","email":"u@example.com","password":"Correct horse 42"}`,
		`{"id":"nfc_user","nickname":"e\u0301\u0301\u0301","email":"nfc@example.com","password":"Correct horse 42"}`,
		`{"id":"space_nick","nickname":"\u00a0\u2003 ","email":"sp@example.com","password":"Correct horse 42"}`,
		`{"id":"weak_pass","nickname":"Weak","email":"weak@example.com","password":"weak_pass"}`,
		`{"id":42,"nickname":"New","email":"new@example.com","password":"Correct horse 42"}`,
		`{"id":"x","nickname":"","email":"not-an-email","password":""}`,
		`{"id":"dup_keys","id":"dup_keys2","nickname":"D","email":"d@example.com","password":"Correct horse 42"}`,
		`{"id":"trailing","nickname":"T","email":"t@example.com","password":"Correct horse 42"} {}`,
		`{"id":"nul_user","nickname":"a\u0000b","email":"n@example.com","password":"Correct horse 42"}`,
		`{"id":"surrogate","nickname":"\ud800","email":"s@example.com","password":"Correct horse 42"}`,
		"{\"id\":\"bad_utf8\",\"nickname\":\"\xff\xfe\",\"email\":\"b@example.com\",\"password\":\"Correct horse 42\"}",
		`{"id":"big_index","nickname":"B","email":"bi@example.com","password":"Correct horse 42","profile":{"name":"P","data":{"x":{"index":1e400,"value":{}}}}}`,
		`{"id":"neg_index","nickname":"N","email":"ni@example.com","password":"Correct horse 42","profile":{"name":"P","data":{"x":{"index":-1,"value":{}}}}}`,
		`{"id":"quoted","nickname":"Q","email":"\"a b\"@example.com","password":"Correct horse 42"}`,
		`{"id":"named","nickname":"Q","email":"Jane <j@example.com>","password":"Correct horse 42"}`,
		`{"admin":true}`,
		`[]`, `null`, `""`, `0`, `{}`, ``, `{`, `{"id":`, `[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]`,
		`{"id":"` + strings.Repeat("a", 5000) + `"}`,
	}
	fuzzWrite(f, "/api/v1/account/signup", anonymousCaller, seeds, func(before, after map[string]int) bool {
		return after["users"] == before["users"]+1 && after["sessions"] == before["sessions"]+1
	})
}

func FuzzSignInBody(f *testing.F) {
	seeds := []string{
		`{"login":"known_user","password":"Correct horse 42"}`,
		`{"login":"@KNOWN_USER","password":"Correct horse 42"}`,
		`{"login":"Known@Example.com","password":"Correct horse 42"}`,
		`{"login":"known_user","password":"Wrong horse 42"}`,
		`{"login":"nobody","password":"Correct horse 42"}`,
		`{"login":"@","password":"x"}`,
		`{"login":"  known_user  ","password":"Correct horse 42"}`,
		`{"login":"known_user","password":"Correct horse 42","extra":1}`,
		`{"login":"","password":""}`,
		`{"login":1,"password":true}`,
		`{"login":"a\u0000","password":"b"}`,
		"{\"login\":\"\xff\",\"password\":\"\xfe\"}",
		`{"login":"known_user"}`,
		`[]`, `null`, ``, `{`, `{}`,
		`{"login":"` + strings.Repeat("k", 300) + `","password":"p"}`,
		// Found by the fuzzer: after about 40 consecutive failures the back-off interval overflowed
		// in PostgreSQL and wrong passwords got a 500 (TestManyFailedSignInsStayUnauthorized).
		`{"login":"Known@EXAmple.Com","password":"0"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	e := fuzzEnv(f)
	status, _, resp := e.Raw(f, "POST", "/api/v1/account/signup", "application/json",
		[]byte(`{"id":"known_user","nickname":"Known","email":"known@example.com","password":"`+Password+`"}`))
	if status != http.StatusCreated {
		f.Fatalf("sign up the known account: %d %s", status, resp)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env := e.reportingTo(t)
		sessions := env.Count(t, "SELECT count(*) FROM sessions")
		status, header, resp := env.Raw(t, "POST", "/api/v1/account/signin", "application/json", body)
		checkAnswer(t, body, status, header, resp)
		after := env.Count(t, "SELECT count(*) FROM sessions")
		switch {
		case status == http.StatusOK:
			if after != sessions+1 {
				t.Fatalf("200 without exactly one new session: %d → %d", sessions, after)
			}
		case status >= 300:
			if after != sessions {
				t.Fatalf("status %d opened a session for body %q", status, body)
			}
		default:
			t.Fatalf("unexpected status %d for body %q: %s", status, body, resp)
		}
	})
}

// TestManyFailedSignInsStayUnauthorized is the deterministic form of what FuzzSignInBody found:
// the lock's back-off doubles per failure and must stay capped at an hour however many failures
// there are. It used to overflow PostgreSQL's interval after about 40 failures, and from then on
// every wrong password answered 500 — a different answer than for an unknown id, and no longer
// extending the lock.
func TestManyFailedSignInsStayUnauthorized(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	unknown := signIn(t, e, "nobody_here", "Wrong horse 42")
	Status(t, "unknown id", unknown.StatusCode(), http.StatusUnauthorized, unknown.Body)
	want := Problem(t, unknown.Body).Code
	for i := range 64 {
		r := signIn(t, e, u.LoginID, "Wrong horse 42")
		if i >= 5 {
			// Once locked, the answer is the lock's, whether the password is right or wrong
			// (issue 9); failures keep counting.
			Status(t, fmt.Sprintf("failed sign-in %d", i+1), r.StatusCode(), http.StatusForbidden, r.Body)
			if p := Problem(t, r.Body); p.Code != "account.temporarily_locked" {
				t.Fatalf("failed sign-in %d while locked answers %s", i+1, p.Code)
			}
			continue
		}
		Status(t, fmt.Sprintf("failed sign-in %d", i+1), r.StatusCode(), http.StatusUnauthorized, r.Body)
		if p := Problem(t, r.Body); p.Code != want {
			t.Fatalf("failed sign-in %d answers %s, unknown ids %s", i+1, p.Code, want)
		}
	}
	if n := e.Count(t, "SELECT failed_signins FROM users WHERE id = $1", u.Session.User.UserId); n != 64 {
		t.Fatalf("every failure counts: %d", n)
	}
	lock := e.Count(t, "SELECT ceil(extract(epoch FROM signin_locked_until - now()))::int FROM users WHERE id = $1", u.Session.User.UserId)
	if lock < 55*60 || lock > 60*60 {
		t.Fatalf("the lock is capped at one hour, got %ds", lock)
	}
	locked := signIn(t, e, u.LoginID, Password)
	Status(t, "correct password while locked", locked.StatusCode(), http.StatusForbidden, locked.Body)
}
