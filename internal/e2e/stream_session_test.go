package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/apiclient"
)

// Regression (issue 9, item 3): an open chat stream kept delivering after its session ended.
// It must end within a second or two on every API process: here the streams are held by a
// second process, and the session ends through the first one.
func TestStreamEndsWithItsSession(t *testing.T) {
	e := New(t) // the default 15s heartbeat: only the announcement can end the streams in time
	second := e.StartServer(e.Config)
	within := 2 * time.Second

	t.Run("sign-out", func(t *testing.T) {
		c := e.newChatter(t)
		s := e.openStream(t, second, c, "")
		r, err := e.As(c.Token()).SignOutWithResponse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		Status(t, "sign out", r.StatusCode(), http.StatusNoContent, r.Body)
		if !s.ended(within) {
			t.Fatal("the stream outlived its session's sign-out")
		}
	})

	t.Run("password change ends the other sessions", func(t *testing.T) {
		c := e.newChatter(t)
		other := e.signInAgain(t, c.User)
		kept := e.openStream(t, second, c, "")
		ended := e.openStream(t, second, chatter{User: other, Profile: c.Profile}, "")
		r, err := e.As(c.Token()).ChangePasswordWithResponse(ctx, apiclient.ChangePasswordJSONRequestBody{
			CurrentPassword: Password, NewPassword: "Another horse 77 battery",
		})
		if err != nil {
			t.Fatal(err)
		}
		Status(t, "change password", r.StatusCode(), http.StatusNoContent, r.Body)
		if !ended.ended(within) {
			t.Fatal("the stream of a revoked session outlived the password change")
		}
		if kept.ended(500 * time.Millisecond) {
			t.Fatal("the stream of the session that changed the password must stay")
		}
	})

	t.Run("deactivation", func(t *testing.T) {
		c := e.newChatter(t)
		s := e.openStream(t, second, c, "")
		r, err := e.As(c.Token()).DeactivateAccountWithResponse(ctx, apiclient.DeactivateAccountJSONRequestBody{Password: Password, Confirm: apiclient.DeactivateRequestConfirmTrue})
		if err != nil {
			t.Fatal(err)
		}
		Status(t, "deactivate", r.StatusCode(), http.StatusNoContent, r.Body)
		if !s.ended(within) {
			t.Fatal("the stream outlived the account's deactivation")
		}
	})
}

// signInAgain opens a second session of u.
func (e *Env) signInAgain(t *testing.T, u User) User {
	t.Helper()
	r, err := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: Password})
	if err != nil || r.JSON200 == nil {
		t.Fatalf("sign in again: %v %s", err, r.Body)
	}
	u.Session = *r.JSON200
	return u
}
