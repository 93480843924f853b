package e2e

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"testing"

	"github.com/bca-app/backend/gen/api"
)

// Fuzz targets for every multipart form: account image, profile image, upload, card create and
// chat image. Each input is two text parts and a file part (or, with fileField "RAW", the file
// bytes as the whole body). Whatever arrives: no 5xx, every refusal a problem document, and a
// refused form leaves no file behind. Fuzz one at a time, e.g.
//
//	go run ./cmd/bcactl with-services -- go test -run '^$' -fuzz FuzzCardForm -fuzztime 60s ./internal/e2e/

type formSetup struct {
	e       *Env
	user    User
	method  string
	path    string
	headers []string
}

func fuzzForm(f *testing.F, setup func(f *testing.F, e *Env) formSetup) {
	e := fuzzEnv(f)
	s := setup(f, e)
	img := encodePNG(f, tinyImage(3, 3))
	f.Add("name", []byte("Card"), "data", []byte(`{"title":"x"}`), "file", img)
	f.Add("name", []byte("a\x00b"), "private", []byte("true"), "file", img)
	f.Add("name", []byte("\xff\xfe"), "data", []byte(deepJSON(50)), "file", img)
	f.Add("data", []byte(wideJSON(200)), "private", []byte("maybe"), "file", img)
	f.Add("file", img, "file", img, "file", img)
	f.Add("x", []byte("y"), "name", []byte("n"), "image", img)
	f.Add("", []byte(nil), "", []byte(nil), "RAW", []byte("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nxx"))
	f.Add("name", []byte("n"), "data", []byte(`{"a":1,"a":2}`), "file", []byte("GIF89a"))
	f.Fuzz(func(t *testing.T, n1 string, v1 []byte, n2 string, v2 []byte, fileField string, file []byte) {
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		ct := w.FormDataContentType()
		if fileField == "RAW" {
			body.Write(file)
		} else {
			for _, p := range [][2]any{{n1, v1}, {n2, v2}} {
				if p[0].(string) == "" {
					continue
				}
				h := textproto.MIMEHeader{}
				h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p[0]))
				part, err := w.CreatePart(h)
				if err != nil {
					t.Skip()
				}
				part.Write(p[1].([]byte))
			}
			if fileField != "" {
				part, err := w.CreateFormFile(fileField, "f.png")
				if err != nil {
					t.Skip()
				}
				part.Write(file)
			}
			w.Close()
		}
		files := func() int {
			return s.e.Count(t, "SELECT count(*) FROM files f JOIN users u ON u.id = f.owner_user_id WHERE u.login_id = $1", s.user.LoginID)
		}
		before := files()
		status, header, resp := e.reportingTo(t).Raw(t, s.method, s.path, ct, body.Bytes(), s.headers...)
		checkAnswer(t, body.Bytes(), status, header, resp)
		if after := files(); status >= 400 && after > before {
			t.Fatalf("a refused form (%d) left %d files: %s", status, after-before, resp)
		}
	})
}

func ownerSetup(method string, path func(e *Env, u User, pid int64) string, acting bool) func(*testing.F, *Env) formSetup {
	return func(f *testing.F, e *Env) formSetup {
		u := e.SignUp(f)
		pid := e.FirstProfile(f, u)
		h := []string{"Authorization", "Bearer " + u.Token()}
		if acting {
			h = append(h, "X-Profile-Id", fmt.Sprint(pid))
		}
		return formSetup{e: e, user: u, method: method, path: path(e, u, pid), headers: h}
	}
}

func FuzzAccountImageForm(f *testing.F) {
	fuzzForm(f, ownerSetup("PUT", func(*Env, User, int64) string { return "/api/v1/account/image" }, false))
}

func FuzzProfileImageForm(f *testing.F) {
	fuzzForm(f, ownerSetup("PUT", func(_ *Env, _ User, pid int64) string { return fmt.Sprintf("/api/v1/profiles/%d/image", pid) }, false))
}

func FuzzUploadForm(f *testing.F) {
	fuzzForm(f, ownerSetup("POST", func(*Env, User, int64) string { return "/api/v1/files" }, false))
}

func FuzzCardForm(f *testing.F) {
	fuzzForm(f, ownerSetup("POST", func(*Env, User, int64) string { return "/api/v1/cards" }, true))
}

func FuzzChatImageForm(f *testing.F) {
	fuzzForm(f, ownerSetup("POST", func(e *Env, u User, pid int64) string {
		other := e.SignUp(f)
		op := e.FirstProfile(f, other)
		e.Exec(f, "UPDATE profiles SET can_anonymous_invite = true WHERE id = $1", op)
		code, _, b := e.call(f, u.Token(), pid, "POST", "/api/v1/chats", map[string]any{"invite_profile_ids": []int64{op}})
		Status(f, "create room", code, http.StatusCreated, b)
		return fmt.Sprintf("/api/v1/chats/%d/images", decode[api.ChatRoomCreated](f, b).Room.Id)
	}, true))
}
