package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/bca-app/backend/gen/apiclient"
)

// Password is a password every test account uses; it meets the rules.
const Password = "Correct horse 42"

var userSeq atomic.Int64

// User is a signed-up account with a live session.
type User struct {
	LoginID string
	Email   string
	Session apiclient.Session
}

// Token is the user's access token.
func (u User) Token() string { return u.Session.AccessToken }

// SignUp creates a fresh account (with a first profile) and returns its session.
func (e *Env) SignUp(t testing.TB) User {
	t.Helper()
	n := userSeq.Add(1)
	id := fmt.Sprintf("user_%d", n)
	email := fmt.Sprintf("user%d@example.com", n)
	resp, err := e.Anon().SignUpWithResponse(context.Background(), nil, apiclient.SignUpJSONRequestBody{
		Id: id, Nickname: fmt.Sprintf("User %d", n), Email: apiclient.Email(email), Password: Password,
		Profile: &apiclient.CreateProfileRequest{Name: fmt.Sprintf("Profile of %d", n)},
	})
	if err != nil {
		t.Fatalf("sign up: %v", err)
	}
	if resp.StatusCode() != http.StatusCreated {
		t.Fatalf("sign up: status %d: %s", resp.StatusCode(), resp.Body)
	}
	return User{LoginID: id, Email: email, Session: *resp.JSON201}
}

// Status fails the test unless the response has the wanted status.
func Status(t testing.TB, what string, got, want int, body []byte) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d: %s", what, got, want, body)
	}
}
