package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

// TestRateLimitsHoldWithoutRedis: with Redis stopped, the sign-in, sign-up and password-reset
// limits still hold, counted in the process (internal/ratelimit's fallback); they never fail
// open. Each limit answers 429 with Retry-After once its budget is spent.
func TestRateLimitsHoldWithoutRedis(t *testing.T) {
	const perAddress, perAccount = 4, 3
	rs := testenv.RedisServer(t)
	e := New(t, func(c *config.Config) {
		c.RedisURL = rs.URL()
		c.RateLimit = config.RateLimits{PerAddress: perAddress, PerAccount: perAccount}
	})
	u := e.SignUp(t)
	if err := rs.Stop(); err != nil {
		t.Fatal(err)
	}
	anon := e.Anon()

	// limited makes attempts until one is refused with 429 and says after how many; the
	// refusal must come within budget+1 attempts.
	limited := func(what string, budget int, attempt func(i int) (int, http.Header, []byte)) {
		t.Helper()
		for i := 1; i <= budget+1; i++ {
			status, h, body := attempt(i)
			if status == http.StatusTooManyRequests {
				if h.Get("Retry-After") == "" {
					t.Errorf("%s: 429 without Retry-After", what)
				}
				if i <= budget-1 {
					t.Errorf("%s: refused already at attempt %d of a budget of %d", what, i, budget)
				}
				return
			}
			if status >= 500 {
				t.Fatalf("%s: attempt %d answered %d: %s", what, i, status, body)
			}
		}
		t.Errorf("%s: %d attempts with Redis down and none refused: the limit failed open", what, budget+1)
	}

	limited("sign-in per account", perAccount, func(int) (int, http.Header, []byte) {
		r, err := anon.SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: u.LoginID, Password: "wrong password 1"})
		if err != nil {
			t.Fatal(err)
		}
		return r.StatusCode(), r.HTTPResponse.Header, r.Body
	})
	limited("sign-up per address", perAddress, func(i int) (int, http.Header, []byte) {
		r, err := anon.SignUpWithResponse(ctx, nil, apiclient.SignUpJSONRequestBody{
			Id: fmt.Sprintf("nolimit_%d_%d", userSeq.Add(1), i), Nickname: "No limit", Email: apiclient.Email(fmt.Sprintf("nolimit%d_%d@example.com", userSeq.Add(1), i)),
			Password: Password, Profile: &apiclient.CreateProfileRequest{Name: "No limit"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return r.StatusCode(), r.HTTPResponse.Header, r.Body
	})
	limited("password reset per address", perAddress, func(int) (int, http.Header, []byte) {
		r, err := anon.RequestPasswordResetWithResponse(ctx, apiclient.RequestPasswordResetJSONRequestBody{Email: apiclient.Email(u.Email)})
		if err != nil {
			t.Fatal(err)
		}
		return r.StatusCode(), r.HTTPResponse.Header, r.Body
	})
}
