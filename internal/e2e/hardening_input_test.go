package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// deepJSON is an object nested n levels deep: {"a":{"a":…{}…}}.
func deepJSON(n int) string { return strings.Repeat(`{"a":`, n-1) + "{}" + strings.Repeat("}", n-1) }

// wideJSON is an object of n keys, nested one level so the spec's maxProperties does not see it.
func wideJSON(n int) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	return `{"inner":{` + strings.Join(keys, ",") + `}}`
}

// TestRequestBodies: the request rules hold whatever the media type (docs/product.md §2).
func TestRequestBodies(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	pid := e.FirstProfile(t, u)
	auth := []string{"Authorization", "Bearer " + u.Token()}
	acting := append([]string{"X-Profile-Id", fmt.Sprint(pid)}, auth...)
	bad := func(what string, want int, method, path, ct, body string, headers ...string) {
		t.Helper()
		code, h, b := e.Raw(t, method, path, ct, []byte(body), headers...)
		Status(t, what, code, want, b)
		if !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
			t.Fatalf("%s: Content-Type %q", what, h.Get("Content-Type"))
		}
	}

	t.Run("a JSON operation refuses other media types", func(t *testing.T) {
		f := multipartForm(t, map[string]string{"name": strings.Repeat("x", 100_000)}, nil)
		code, _, b := e.Raw(t, "PATCH", fmt.Sprintf("/api/v1/profiles/%d", pid), f.contentType, f.body, append(auth, "If-Match", "*")...)
		Status(t, "multipart to a JSON operation", code, http.StatusUnsupportedMediaType, b)
		f = multipartForm(t, map[string]string{"id": "x@y.z/../", "nickname": "n", "email": "a@b.example", "password": "correct horse 42"}, nil)
		code, _, b = e.Raw(t, "POST", "/api/v1/account/signup", f.contentType, f.body)
		Status(t, "multipart sign-up", code, http.StatusUnsupportedMediaType, b)
		bad("text/plain", http.StatusUnsupportedMediaType, "POST", "/api/v1/profiles", "text/plain", `{"name":"x"}`, auth...)
		bad("JSON to an upload", http.StatusUnsupportedMediaType, "POST", "/api/v1/files", "application/json", `{}`, auth...)
		if n := e.Count(t, "SELECT count(*) FROM users WHERE login_id LIKE '%@%'"); n != 0 {
			t.Fatal("a login id with @ was stored")
		}
	})
	t.Run("the body limit is the operation's", func(t *testing.T) {
		body := `{"name":"` + strings.Repeat("x", int(e.Config.MaxBodyBytes)) + `"}`
		f := multipartForm(t, map[string]string{"name": body}, nil)
		code, _, b := e.Raw(t, "POST", "/api/v1/profiles", f.contentType, f.body, auth...)
		Status(t, "a large multipart body to a JSON operation", code, http.StatusRequestEntityTooLarge, b)
	})
	t.Run("authentication comes before validation", func(t *testing.T) {
		bad("anonymous, bad id", http.StatusUnauthorized, "GET", "/api/v1/profiles/abc", "", "")
		bad("anonymous, bad body", http.StatusUnauthorized, "POST", "/api/v1/profiles", "application/json", `{"name":`)
		bad("anonymous, wrong media type", http.StatusUnauthorized, "POST", "/api/v1/profiles", "text/plain", `x`)
	})
	t.Run("JSON is one value without duplicate keys, within the limits", func(t *testing.T) {
		bad("trailing data", 400, "POST", "/api/v1/profiles", "application/json", `{"name":"a"} {"name":"b"}`, auth...)
		bad("duplicate key", 400, "POST", "/api/v1/profiles", "application/json", `{"name":"a","name":"b"}`, auth...)
		bad("escaped NUL", 400, "POST", "/api/v1/profiles", "application/json", `{"name":"a\u0000b"}`, auth...)
		bad("invalid UTF-8", 400, "POST", "/api/v1/profiles", "application/json", "{\"name\":\"a\xffb\"}", auth...)
		bad("too deep", 400, "POST", "/api/v1/cards", "application/json", `{"name":"c","data":`+deepJSON(20)+`}`, acting...)
		bad("too many keys", 400, "POST", "/api/v1/cards", "application/json", `{"name":"c","data":`+wideJSON(1000)+`}`, acting...)
		code, _, b := e.Raw(t, "POST", "/api/v1/cards", "application/json", []byte(`{"name":"c","data":`+deepJSON(10)+`}`), acting...)
		Status(t, "within the depth limit", code, http.StatusCreated, b)
	})
	t.Run("names and messages", func(t *testing.T) {
		bad("control character in a name", 400, "POST", "/api/v1/profiles", "application/json", `{"name":"a\u0007b"}`, auth...)
		bad("invisible name", 400, "POST", "/api/v1/profiles", "application/json", `{"name":"\u200b\u200b"}`, auth...)
		bad("invisible message", 400, "POST", "/api/v1/chats/1/events", "application/json", `{"message":"\u200b\u2063 \u3164"}`, acting...)
	})
	t.Run("the multipart card form follows the card rules", func(t *testing.T) {
		img := pngBytes(t)
		for name, fields := range map[string]map[string]string{
			"NUL in name":        {"name": "a\x00b"},
			"invalid UTF-8":      {"name": "a\xffb"},
			"control character":  {"name": "a\x1bb"},
			"name too long":      {"name": strings.Repeat("é", 101)},
			"NUL in data":        {"name": "c", "data": `{"a":"b\u0000"}`},
			"data not an object": {"name": "c", "data": `[1]`},
			"data too deep":      {"name": "c", "data": deepJSON(5000)},
			"data too wide":      {"name": "c", "data": wideJSON(1000)},
			"data trailing":      {"name": "c", "data": `{} {}`},
			"data duplicate key": {"name": "c", "data": `{"a":1,"a":2}`},
			"private not a bool": {"name": "c", "private": "yes"},
		} {
			f := multipartForm(t, fields, img)
			code, h, b := e.Raw(t, "POST", "/api/v1/cards", f.contentType, f.body, acting...)
			if code != http.StatusBadRequest || !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
				t.Errorf("%s: %d %s", name, code, b)
			}
		}
		if n := e.Count(t, "SELECT count(*) FROM cards WHERE profile_id = $1 AND preview_file_id IS NOT NULL", pid); n != 0 {
			t.Fatalf("cards stored: %d", n)
		}
		if n := e.Count(t, "SELECT count(*) FROM files f JOIN users u ON u.id = f.owner_user_id WHERE u.login_id = $1", u.LoginID); n != 0 {
			t.Fatalf("refused forms left %d files", n)
		}
	})
	t.Run("unknown paths under /docs/ are problems", func(t *testing.T) {
		bad("docs", http.StatusNotFound, "GET", "/docs/nope", "", "")
		bad("docs asset", http.StatusNotFound, "GET", "/docs/assets/nope.js", "", "")
	})
}
