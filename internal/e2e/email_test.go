package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/app"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

const (
	verifySubject = "Verify your B.Ca email"
	resetSubject  = "Reset your B.Ca password"
	newPassword   = "Battery staple 43"
)

// verificationRequired is the configuration where a new account must follow the mailed link
// before it can sign in.
func verificationRequired(c *config.Config) {
	c.MailEnable = true
	c.SignInAfterEmailVerification = true
}

// signUpPending signs up an account that must verify its email first (202).
func signUpPending(t *testing.T, e *Env, id, email string) apiclient.Account {
	t.Helper()
	resp, err := e.Anon().SignUpWithResponse(ctx, nil, apiclient.SignUpJSONRequestBody{
		Id: id, Nickname: "Nick " + id, Email: apiclient.Email(email), Password: Password,
	})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "sign up "+id, resp.StatusCode(), http.StatusAccepted, resp.Body)
	if !resp.JSON202.VerificationRequired || resp.JSON202.User.EmailVerified || resp.JSON202.User.Email != email {
		t.Fatalf("sign up %s: want verification_required and an unverified %s: %s", id, email, resp.Body)
	}
	if c := resp.HTTPResponse.Header.Get("Set-Cookie"); c != "" {
		t.Fatalf("sign up %s: a pending account gets no refresh cookie: %q", id, c)
	}
	return resp.JSON202.User
}

func signIn(t *testing.T, e *Env, login, password string) *apiclient.SignInResponse {
	t.Helper()
	r, err := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: login, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// verifyEmail follows a verification link with the given Accept header.
func verifyEmail(t *testing.T, e *Env, token, accept string) *apiclient.VerifyEmailResponse {
	t.Helper()
	r, err := e.Client(e.Server, "", "Accept", accept).VerifyEmailWithResponse(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func resetPassword(t *testing.T, e *Env, token, password string) *apiclient.ResetPasswordResponse {
	t.Helper()
	r, err := e.Anon().ResetPasswordWithResponse(ctx, token, apiclient.ResetPasswordJSONRequestBody{NewPassword: password})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// mailToken extracts the link token of a mail or fails the test.
func mailToken(t *testing.T, m Mail) string {
	t.Helper()
	tok, err := m.Token()
	if err != nil {
		t.Fatalf("mail %q to %s: %v\n%s", m.Subject, m.To, err, m.Text)
	}
	return tok
}

// settledMails returns the mails to addr about subject after every mail the server has decided
// to send has been handed to the sender. A request decides synchronously (the send itself runs
// in the background), so an empty result really means that no mail was sent.
func settledMails(s *Server, addr, subject string) []Mail {
	s.App.Accounts.Wait()
	var out []Mail
	for _, m := range s.Logs.Mails() {
		if m.To == addr && strings.Contains(m.Subject, subject) {
			out = append(out, m)
		}
	}
	return out
}

// waitMails returns the mails to addr about subject, oldest first, once the server's sends have
// settled, and fails unless there are at least n.
func waitMails(t *testing.T, s *Server, addr, subject string, n int) []Mail {
	t.Helper()
	mails := settledMails(s, addr, subject)
	if len(mails) < n {
		t.Fatalf("want %d mails to %s about %q, got %d", n, addr, subject, len(mails))
	}
	return mails
}

func TestEmailVerificationRequired(t *testing.T) {
	e := New(t, verificationRequired)
	const addr = "Jane.V@example.com"
	jane := signUpPending(t, e, "jane_v", addr)
	if n := e.Count(t, "SELECT count(*) FROM sessions WHERE user_id = $1", jane.UserId); n != 0 {
		t.Fatalf("a pending account has no session, got %d", n)
	}

	// The state is revealed only to someone who knows the password.
	wrong := signIn(t, e, "jane_v", "Wrong horse 42")
	Status(t, "wrong password", wrong.StatusCode(), http.StatusUnauthorized, wrong.Body)
	if p := Problem(t, wrong.Body); p.Code != "account.invalid_credentials" {
		t.Fatalf("wrong password of a pending account: %s", wrong.Body)
	}
	right := signIn(t, e, "jane_v", Password)
	Status(t, "correct password before verification", right.StatusCode(), http.StatusForbidden, right.Body)
	if p := Problem(t, right.Body); p.Code != "account.email_not_verified" {
		t.Fatalf("code: %s", right.Body)
	}

	mail := e.Server.Logs.WaitMail(t, addr, verifySubject)
	token := mailToken(t, mail)
	if !strings.Contains(mail.Text, e.Config.PublicBaseURL+"/api/v1/account/email-verification/"+token) {
		t.Fatalf("the mail links to the public base URL:\n%s", mail.Text)
	}

	ok := verifyEmail(t, e, token, "application/json")
	Status(t, "verify", ok.StatusCode(), http.StatusOK, ok.Body)
	if ct := ok.HTTPResponse.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("API clients get JSON, got %q", ct)
	}
	if !ok.JSON200.Verified || ok.JSON200.Email != addr {
		t.Fatalf("verified answer: %s", ok.Body)
	}
	again := verifyEmail(t, e, token, "application/json")
	Status(t, "the same link again", again.StatusCode(), http.StatusNotFound, again.Body)
	if p := Problem(t, again.Body); p.Code != "resource.not_found" {
		t.Fatalf("used link: %s", again.Body)
	}

	in := signIn(t, e, "jane_v", Password)
	Status(t, "sign in after verification", in.StatusCode(), http.StatusOK, in.Body)
	if !in.JSON200.User.EmailVerified {
		t.Fatalf("account shows the verified email: %s", in.Body)
	}

	// A browser following the link gets a page, not JSON.
	const other = "bob.v@example.com"
	signUpPending(t, e, "bob_v", other)
	page := verifyEmail(t, e, mailToken(t, e.Server.Logs.WaitMail(t, other, verifySubject)), "text/html,application/xhtml+xml,*/*;q=0.8")
	Status(t, "verify in a browser", page.StatusCode(), http.StatusOK, page.Body)
	if ct := page.HTTPResponse.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("browsers get HTML, got %q", ct)
	}
	if !strings.Contains(string(page.Body), "<html") || !strings.Contains(string(page.Body), other) {
		t.Fatalf("verification page: %s", page.Body)
	}
	if r := signIn(t, e, "bob_v", Password); r.StatusCode() != http.StatusOK {
		t.Fatalf("sign in after the browser verified: %d %s", r.StatusCode(), r.Body)
	}

	unknown := verifyEmail(t, e, strings.Repeat("A", 43), "text/html")
	Status(t, "unknown link in a browser", unknown.StatusCode(), http.StatusNotFound, unknown.Body)
	if ct := unknown.HTTPResponse.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(unknown.Body), "<html") {
		t.Fatalf("browsers get an HTML error page, got %q: %s", ct, unknown.Body)
	}
}

func TestResendVerificationReplacesTheLink(t *testing.T) {
	e := New(t, verificationRequired)
	const addr = "carol@example.com"
	signUpPending(t, e, "carol", addr)
	first := mailToken(t, waitMails(t, e.Server, addr, verifySubject, 1)[0])

	// Anonymous, with the address: a pending account cannot sign in to ask.
	r, err := e.Anon().ResendVerificationEmailWithResponse(ctx, apiclient.ResendVerificationEmailJSONRequestBody{Email: ptr(apiclient.Email("CAROL@example.com"))})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "anonymous resend", r.StatusCode(), http.StatusAccepted, r.Body)
	mails := waitMails(t, e.Server, addr, verifySubject, 2)
	second := mailToken(t, mails[len(mails)-1])
	if second == first {
		t.Fatal("a resent mail carries a new token")
	}
	// The old link first: if it still worked it would use up the verification.
	old := verifyEmail(t, e, first, "application/json")
	Status(t, "superseded link", old.StatusCode(), http.StatusNotFound, old.Body)
	cur := verifyEmail(t, e, second, "application/json")
	Status(t, "new link", cur.StatusCode(), http.StatusOK, cur.Body)

	before := e.Snapshot(t)
	unknown, err := e.Anon().ResendVerificationEmailWithResponse(ctx, apiclient.ResendVerificationEmailJSONRequestBody{Email: ptr(apiclient.Email("nobody@example.com"))})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "resend to an unknown address", unknown.StatusCode(), http.StatusAccepted, unknown.Body)
	if string(unknown.Body) != string(r.Body) {
		t.Fatalf("unknown and known addresses answer alike: %s vs %s", unknown.Body, r.Body)
	}
	if m := settledMails(e.Server, "nobody@example.com", ""); len(m) != 0 {
		t.Fatalf("no mail to an unknown address: %+v", m)
	}
	assertUnchanged(t, e, before)

	// A verified account is owed nothing.
	verified, _ := e.Anon().ResendVerificationEmailWithResponse(ctx, apiclient.ResendVerificationEmailJSONRequestBody{Email: ptr(apiclient.Email(addr))})
	Status(t, "resend to a verified account", verified.StatusCode(), http.StatusAccepted, verified.Body)
	if m := settledMails(e.Server, addr, verifySubject); len(m) != 2 {
		t.Fatalf("no third mail to a verified address, got %d", len(m))
	}

	noEmail, _, body := e.Raw(t, "POST", "/api/v1/account/email-verification", "application/json", []byte(`{}`))
	Status(t, "anonymous resend without an address", noEmail, http.StatusBadRequest, body)
	if p := Problem(t, body); !hasField(p.Errors, "email") {
		t.Fatalf("the problem names email: %s", body)
	}
}

func TestResendVerificationSignedIn(t *testing.T) {
	e := New(t) // mail on, verification optional: sign-up signs in and mails a link
	u := e.SignUp(t)
	if u.Session.User.EmailVerified {
		t.Fatal("with mail on, a new address is not verified yet")
	}
	first := mailToken(t, waitMails(t, e.Server, u.Email, verifySubject, 1)[0])

	r, err := e.As(u.Token()).ResendVerificationEmailWithResponse(ctx, apiclient.ResendVerificationEmailJSONRequestBody{})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "signed-in resend", r.StatusCode(), http.StatusAccepted, r.Body)
	mails := waitMails(t, e.Server, u.Email, verifySubject, 2)
	second := mailToken(t, mails[len(mails)-1])

	old := verifyEmail(t, e, first, "application/json")
	Status(t, "superseded link", old.StatusCode(), http.StatusNotFound, old.Body)
	cur := verifyEmail(t, e, second, "application/json")
	Status(t, "new link", cur.StatusCode(), http.StatusOK, cur.Body)
	me, _ := e.As(u.Token()).GetMyAccountWithResponse(ctx)
	if me.StatusCode() != http.StatusOK || !me.JSON200.EmailVerified {
		t.Fatalf("verified account: %d %s", me.StatusCode(), me.Body)
	}

	bad, _, body := e.Raw(t, "POST", "/api/v1/account/email-verification", "application/json", []byte(`{}`), "Authorization", "Bearer "+u.Token()+"x")
	Status(t, "resend with a bad token", bad, http.StatusUnauthorized, body)
}

func TestMailDisabled(t *testing.T) {
	e := New(t, func(c *config.Config) {
		c.MailEnable = false
		c.SignInAfterEmailVerification = true // cannot apply without mail
	})
	resp, err := e.Anon().SignUpWithResponse(ctx, nil, apiclient.SignUpJSONRequestBody{
		Id: "dora", Nickname: "Dora", Email: "dora@example.com", Password: Password,
	})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "sign up without mail", resp.StatusCode(), http.StatusCreated, resp.Body)
	if !resp.JSON201.User.EmailVerified || resp.JSON201.AccessToken == "" {
		t.Fatalf("signed in at once with the address taken as given: %s", resp.Body)
	}
	if me, _ := e.As(resp.JSON201.AccessToken).GetMyAccountWithResponse(ctx); me.StatusCode() != http.StatusOK {
		t.Fatalf("the session works: %d", me.StatusCode())
	}
	reset, _ := e.Anon().RequestPasswordResetWithResponse(ctx, apiclient.RequestPasswordResetJSONRequestBody{Email: "dora@example.com"})
	Status(t, "reset request without mail", reset.StatusCode(), http.StatusAccepted, reset.Body)
	resend, _ := e.As(resp.JSON201.AccessToken).ResendVerificationEmailWithResponse(ctx, apiclient.ResendVerificationEmailJSONRequestBody{})
	Status(t, "resend without mail", resend.StatusCode(), http.StatusAccepted, resend.Body)
	if m := settledMails(e.Server, "dora@example.com", ""); len(m) != 0 {
		t.Fatalf("nothing is mailed when mail is off: %+v", m)
	}
	if n := e.Count(t, "SELECT count(*) FROM email_tokens"); n != 0 {
		t.Fatalf("no email tokens when mail is off, got %d", n)
	}
}

func TestPasswordReset(t *testing.T) {
	e := New(t)
	u := e.SignUp(t)
	verifyToken := mailToken(t, waitMails(t, e.Server, u.Email, verifySubject, 1)[0])
	second := signIn(t, e, u.LoginID, Password)
	Status(t, "second session", second.StatusCode(), http.StatusOK, second.Body)
	sessions := []string{u.Token(), second.JSON200.AccessToken}

	// Lock sign-in with five failures; the reset must clear it.
	for range 5 {
		r := signIn(t, e, u.LoginID, "Wrong horse 42")
		Status(t, "failed sign-in", r.StatusCode(), http.StatusUnauthorized, r.Body)
	}
	locked := signIn(t, e, u.LoginID, Password)
	Status(t, "locked", locked.StatusCode(), http.StatusForbidden, locked.Body)
	if p := Problem(t, locked.Body); p.Code != "account.temporarily_locked" {
		t.Fatalf("locked: %s", locked.Body)
	}

	before := e.Snapshot(t)
	unknown, err := e.Anon().RequestPasswordResetWithResponse(ctx, apiclient.RequestPasswordResetJSONRequestBody{Email: "nobody@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "reset for an unknown address", unknown.StatusCode(), http.StatusAccepted, unknown.Body)
	if m := settledMails(e.Server, "nobody@example.com", ""); len(m) != 0 {
		t.Fatalf("no mail to an unknown address: %+v", m)
	}
	assertUnchanged(t, e, before)

	known, err := e.Anon().RequestPasswordResetWithResponse(ctx, apiclient.RequestPasswordResetJSONRequestBody{Email: apiclient.Email(strings.ToUpper(u.Email))})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "reset for a known address", known.StatusCode(), http.StatusAccepted, known.Body)
	if string(known.Body) != string(unknown.Body) {
		t.Fatalf("known and unknown addresses answer alike: %s vs %s", known.Body, unknown.Body)
	}
	resetToken := mailToken(t, waitMails(t, e.Server, u.Email, resetSubject, 1)[0])

	// Tokens are bound to their purpose, both ways.
	cross := resetPassword(t, e, verifyToken, newPassword)
	Status(t, "verification token as reset token", cross.StatusCode(), http.StatusNotFound, cross.Body)
	crossVerify := verifyEmail(t, e, resetToken, "application/json")
	Status(t, "reset token as verification token", crossVerify.StatusCode(), http.StatusNotFound, crossVerify.Body)

	weak := resetPassword(t, e, resetToken, "aaaaaaaaaa")
	Status(t, "weak new password", weak.StatusCode(), http.StatusBadRequest, weak.Body)
	if p := Problem(t, weak.Body); p.Code != "account.weak_password" || !hasField(p.Errors, "new_password") {
		t.Fatalf("weak password problem: %s", weak.Body)
	}
	sameAsID := resetPassword(t, e, resetToken, strings.ToUpper(u.LoginID))
	Status(t, "new password equal to the id", sameAsID.StatusCode(), http.StatusBadRequest, sameAsID.Body)

	ok := resetPassword(t, e, resetToken, newPassword) // still valid after the refusals
	Status(t, "reset", ok.StatusCode(), http.StatusNoContent, ok.Body)
	if n := e.Count(t, "SELECT count(*) FROM users WHERE id = $1 AND failed_signins = 0 AND signin_locked_until IS NULL", u.Session.User.UserId); n != 1 {
		t.Fatal("the reset clears the failure counter and the lock")
	}
	again := resetPassword(t, e, resetToken, "Another pass 44")
	Status(t, "the same token again", again.StatusCode(), http.StatusNotFound, again.Body)

	for i, tok := range sessions {
		me, _ := e.As(tok).GetMyAccountWithResponse(ctx)
		Status(t, fmt.Sprintf("session %d after the reset", i), me.StatusCode(), http.StatusUnauthorized, me.Body)
	}
	old := signIn(t, e, u.LoginID, Password)
	Status(t, "old password", old.StatusCode(), http.StatusUnauthorized, old.Body)
	fresh := signIn(t, e, u.LoginID, newPassword) // also proves the lock is gone
	Status(t, "new password", fresh.StatusCode(), http.StatusOK, fresh.Body)
	if !fresh.JSON200.User.EmailVerified {
		t.Fatal("a reset proves the mailbox, so the address counts as verified")
	}
}

// motoMessage is one mail moto's SES recorded (GET /moto-api/data.json, ses.Message).
type motoMessage struct {
	Destinations struct {
		ToAddresses []string `json:"ToAddresses"`
	} `json:"destinations"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
	Source  string `json:"source"`
}

// motoMails returns the SES messages moto recorded to addr.
func motoMails(t *testing.T, endpoint, addr string) []motoMessage {
	t.Helper()
	resp, err := http.Get(endpoint + "/moto-api/data.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("moto data: %d %v", resp.StatusCode, err)
	}
	var data struct {
		SES struct {
			Message []motoMessage `json:"Message"`
		} `json:"ses"`
	}
	if err := json.Unmarshal(body, &data); err != nil {
		t.Fatalf("moto data: %v", err)
	}
	var out []motoMessage
	for _, m := range data.SES.Message {
		for _, to := range m.Destinations.ToAddresses {
			if to == addr {
				out = append(out, m)
			}
		}
	}
	return out
}

// sesConfig sends mail through SES at moto's endpoint from the given address.
func sesConfig(endpoint, from string) Option {
	return func(c *config.Config) {
		c.MailEnable = true
		c.SignInAfterEmailVerification = true
		c.AWS.SESEnable = true
		c.AWS.EndpointURL = endpoint
		c.AWS.AccessKeyID = "test"
		c.AWS.SecretAccessKey = "test"
		c.AWS.Region = "us-east-1"
		c.MailFrom = from
	}
}

// verifySender registers the sender identity with SES, as an operator would.
func verifySender(t *testing.T, endpoint, address string) {
	t.Helper()
	awsCfg, err := app.AWSConfig(ctx, config.AWS{Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test"})
	if err != nil {
		t.Fatal(err)
	}
	client := sesv2.NewFromConfig(awsCfg, func(o *sesv2.Options) { o.BaseEndpoint = aws.String(endpoint) })
	if _, err := client.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(address)}); err != nil {
		t.Fatalf("create SES identity %s: %v", address, err)
	}
}

func TestMailThroughSES(t *testing.T) {
	endpoint := testenv.AWSEndpoint(t)
	verifySender(t, endpoint, "no-reply@bca.test")
	e := New(t, sesConfig(endpoint, "B.Ca <no-reply@bca.test>"))
	addr := testenv.UniqueName("ses") + "@example.com" // moto is shared by every test
	signUpPending(t, e, "ses_user", addr)
	e.Server.App.Accounts.Wait() // the send runs in the background

	mails := motoMails(t, endpoint, addr)
	if len(mails) != 1 {
		t.Fatalf("want one SES message to %s, got %d", addr, len(mails))
	}
	m := mails[0]
	if !strings.Contains(m.Source, "no-reply@bca.test") || !strings.Contains(m.Subject, verifySubject) {
		t.Fatalf("SES message from %q about %q", m.Source, m.Subject)
	}
	if logged := settledMails(e.Server, addr, ""); len(logged) != 0 {
		t.Fatal("with SES on, mail is not written to the log")
	}
	token := mailToken(t, Mail{To: addr, Subject: m.Subject, Text: m.Body})
	ok := verifyEmail(t, e, token, "application/json")
	Status(t, "verify with the SES-mailed link", ok.StatusCode(), http.StatusOK, ok.Body)
	in := signIn(t, e, "ses_user", Password)
	Status(t, "sign in", in.StatusCode(), http.StatusOK, in.Body)
}

func TestSESFailureDoesNotFailSignUp(t *testing.T) {
	endpoint := testenv.AWSEndpoint(t)
	e := New(t, sesConfig(endpoint, "x@unverified.test"))
	addr := testenv.UniqueName("sesfail") + "@example.com"
	signUpPending(t, e, "unlucky", addr) // 202 although SES refuses the sender

	e.Server.App.Accounts.Wait()
	if m := motoMails(t, endpoint, addr); len(m) != 0 {
		t.Fatalf("SES accepted mail from an unverified sender: %+v", m)
	}
	if line := logLine(e.Server.Logs, "send mail"); line == "" || !strings.Contains(line, "not verified") {
		t.Fatalf("the SES failure is logged with its reason, got %q", line)
	}
	// The account exists and can ask for the link again once mail works.
	if n := e.Count(t, "SELECT count(*) FROM users WHERE login_id = 'unlucky'"); n != 1 {
		t.Fatalf("account created: %d", n)
	}

	e2 := New(t, func(c *config.Config) {
		sesConfig(endpoint, "x@unverified.test")(c)
		c.SignInAfterEmailVerification = false
	})
	resp, err := e2.Anon().SignUpWithResponse(ctx, nil, apiclient.SignUpJSONRequestBody{
		Id: "unlucky2", Nickname: "Unlucky", Email: apiclient.Email(testenv.UniqueName("sesfail") + "@example.com"), Password: Password,
	})
	if err != nil {
		t.Fatal(err)
	}
	Status(t, "sign up with verification optional", resp.StatusCode(), http.StatusCreated, resp.Body)
}

// logLine returns the first server log line whose message is msg, or "".
func logLine(l *LogSink, msg string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		var m struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(line, &m) == nil && m.Msg == msg {
			return string(line)
		}
	}
	return ""
}
