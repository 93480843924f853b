package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/account"
	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/profile"
)

// Ping answers liveness through the whole middleware chain.
func (s *Server) Ping(context.Context, api.PingRequestObject) (api.PingResponseObject, error) {
	return api.Ping200JSONResponse{Message: "pong", Time: time.Now().UTC()}, nil
}

const refreshCookie = "bca_refresh"

// cookieFor sets (or, with an empty session, clears) the refresh cookie. It is scoped to the
// account paths and HttpOnly, so scripts and other paths never see it.
func (s *Server) cookieFor(sess *account.Session) *string {
	c := http.Cookie{Name: refreshCookie, Path: "/api/v1/account", HttpOnly: true, Secure: s.SecureCookies, SameSite: http.SameSiteStrictMode}
	if sess == nil {
		c.MaxAge = -1
	} else {
		c.Value = sess.RefreshToken
		c.Expires = sess.RefreshExpiresAt
	}
	v := c.String()
	return &v
}

func accountOf(u db.User) api.Account {
	a := api.Account{
		UserId: u.ID, Id: u.LoginID, Nickname: u.Nickname, Email: u.Email, EmailVerified: u.EmailVerifiedAt != nil,
		Description: u.Description, Role: api.AccountRole(u.Role), CreatedAt: u.CreatedAt.UTC(), ModifiedAt: u.ModifiedAt.UTC(),
	}
	if u.ImageFileKey != nil {
		url := files.URL(*u.ImageFileKey)
		a.ImageUrl = &url
	}
	return a
}

func sessionOf(s account.Session) api.Session {
	return api.Session{
		AccessToken: s.AccessToken, AccessTokenExpiresAt: s.AccessExpiresAt.UTC(),
		RefreshToken: s.RefreshToken, RefreshTokenExpiresAt: s.RefreshExpiresAt.UTC(),
		SessionId: s.SessionID, User: accountOf(s.User),
	}
}

// SignUp creates an account.
func (s *Server) SignUp(ctx context.Context, req api.SignUpRequestObject) (api.SignUpResponseObject, error) {
	b := req.Body
	in := account.SignUpInput{LoginID: b.Id, Nickname: b.Nickname, Email: string(b.Email), Password: b.Password, Description: b.Description}
	if b.Profile != nil {
		p := createProfileInput(*b.Profile)
		in.Profile = &p
	}
	res, err := s.Accounts.SignUp(ctx, in, client(ctx, req.Params.XClientToken))
	if err != nil {
		return nil, err
	}
	if res.Session == nil {
		return api.SignUp202JSONResponse{User: accountOf(res.User), VerificationRequired: true}, nil
	}
	return api.SignUp201JSONResponse{Body: sessionOf(*res.Session), Headers: api.SignUp201ResponseHeaders{SetCookie: s.cookieFor(res.Session)}}, nil
}

func createProfileInput(b api.CreateProfileRequest) profile.CreateInput {
	in := profile.CreateInput{
		Name: b.Name, TeamName: b.TeamName, Description: b.Description,
		Private: b.Private, CanAnonymousInvite: b.CanAnonymousInvite, IsFollowListPublic: b.IsFollowListPublic,
	}
	if b.Data != nil {
		in.Data = *b.Data
	}
	return in
}

// CheckAvailability tells which values are free.
func (s *Server) CheckAvailability(ctx context.Context, req api.CheckAvailabilityRequestObject) (api.CheckAvailabilityResponseObject, error) {
	b := req.Body
	var email *string
	if b.Email != nil {
		e := string(*b.Email)
		email = &e
	}
	a, err := s.Accounts.CheckAvailability(ctx, b.Id, b.Nickname, email, client(ctx, nil))
	if err != nil {
		return nil, err
	}
	return api.CheckAvailability200JSONResponse{Id: a.ID, Nickname: a.Nickname, Email: a.Email}, nil
}

// SignIn opens a session.
func (s *Server) SignIn(ctx context.Context, req api.SignInRequestObject) (api.SignInResponseObject, error) {
	sess, err := s.Accounts.SignIn(ctx, req.Body.Login, req.Body.Password, client(ctx, req.Params.XClientToken))
	if err != nil {
		return nil, err
	}
	return api.SignIn200JSONResponse{Body: sessionOf(sess), Headers: api.SignIn200ResponseHeaders{SetCookie: s.cookieFor(&sess)}}, nil
}

// RefreshSession rotates the refresh token. The cookie is accepted only with the
// X-Requested-With header, which a cross-site form cannot send.
func (s *Server) RefreshSession(ctx context.Context, req api.RefreshSessionRequestObject) (api.RefreshSessionResponseObject, error) {
	var token string
	switch {
	case req.Body != nil && req.Body.RefreshToken != nil:
		token = *req.Body.RefreshToken
	case req.Params.BcaRefresh != nil:
		if req.Params.XRequestedWith == nil || *req.Params.XRequestedWith != "bca" {
			return nil, domain.Forbidden("auth.csrf", "Refreshing with the cookie needs the header X-Requested-With: bca.")
		}
		token = *req.Params.BcaRefresh
	default:
		return nil, domain.Invalid("refresh_token", "is required (body or cookie)")
	}
	sess, err := s.Accounts.Refresh(ctx, token, client(ctx, req.Params.XClientToken))
	if err != nil {
		return nil, err
	}
	return api.RefreshSession200JSONResponse{Body: sessionOf(sess), Headers: api.RefreshSession200ResponseHeaders{SetCookie: s.cookieFor(&sess)}}, nil
}

// SignOut ends the current session.
func (s *Server) SignOut(ctx context.Context, _ api.SignOutRequestObject) (api.SignOutResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Accounts.SignOut(ctx, p.Caller); err != nil {
		return nil, err
	}
	return api.SignOut204Response{Headers: api.SignOut204ResponseHeaders{SetCookie: s.cookieFor(nil)}}, nil
}

// SignOutEverywhere ends every session of the caller.
func (s *Server) SignOutEverywhere(ctx context.Context, _ api.SignOutEverywhereRequestObject) (api.SignOutEverywhereResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Accounts.SignOutEverywhere(ctx, p.Caller); err != nil {
		return nil, err
	}
	return api.SignOutEverywhere204Response{Headers: api.SignOutEverywhere204ResponseHeaders{SetCookie: s.cookieFor(nil)}}, nil
}

// ListSessions pages through the caller's sessions.
func (s *Server) ListSessions(ctx context.Context, req api.ListSessionsRequestObject) (api.ListSessionsResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	before, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := pageLimit(req.Params.Limit)
	rows, err := s.Accounts.ListSessions(ctx, p.Caller, before, limit+1)
	if err != nil {
		return nil, err
	}
	out := api.ListSessions200JSONResponse{Items: []api.SessionInfo{}}
	rows, out.NextCursor, out.HasMore = page(rows, limit, func(r db.Session) int64 { return r.ID })
	for _, r := range rows {
		out.Items = append(out.Items, api.SessionInfo{
			SessionId: r.ID, CreatedAt: r.CreatedAt.UTC(), LastUsedAt: r.LastUsedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(),
			UserAgent: r.UserAgent, Current: r.ID == p.SessionID, HasDeviceToken: r.DeviceToken != nil,
		})
	}
	return out, nil
}

// RevokeSession ends one of the caller's sessions.
func (s *Server) RevokeSession(ctx context.Context, req api.RevokeSessionRequestObject) (api.RevokeSessionResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Accounts.RevokeSession(ctx, p.Caller, req.SessionId); err != nil {
		return nil, err
	}
	return api.RevokeSession204Response{}, nil
}

// GetMyAccount reads the caller's account. The app reads it all day and it changes rarely, so
// the encoded answer is cached in Redis under the user's cache generation and comes back with
// the authentication read (auth.WithAccount): no PostgreSQL round trip while nothing changed.
func (s *Server) GetMyAccount(ctx context.Context, _ api.GetMyAccountRequestObject) (api.GetMyAccountResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if p.Account != "" {
		return encodedAccount(p.Account), nil
	}
	u, err := s.Accounts.Get(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(accountOf(u))
	if err != nil {
		return nil, fmt.Errorf("encode account: %w", err)
	}
	body = append(body, '\n') // as the generated response's json.Encoder writes it
	s.Authn.CacheAccount(ctx, p, body)
	return encodedAccount(body), nil
}

// encodedAccount is getMyAccount's 200 answer already encoded: exactly what
// api.GetMyAccount200JSONResponse writes, without encoding it again.
type encodedAccount []byte

func (a encodedAccount) VisitGetMyAccountResponse(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(a)
	return err
}

// UpdateMyAccount changes nickname, description or id.
func (s *Server) UpdateMyAccount(ctx context.Context, req api.UpdateMyAccountRequestObject) (api.UpdateMyAccountResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	b := req.Body
	in := account.UpdateInput{Nickname: b.Nickname, LoginID: b.Id, Password: b.Password}
	if b.Description != nil {
		in.SetDescription = true
		if *b.Description != "" {
			in.Description = b.Description
		}
	}
	u, err := s.Accounts.Update(ctx, p.Caller, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateMyAccount200JSONResponse(accountOf(u)), nil
}

// ChangePassword sets a new password.
func (s *Server) ChangePassword(ctx context.Context, req api.ChangePasswordRequestObject) (api.ChangePasswordResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Accounts.ChangePassword(ctx, p.Caller, req.Body.CurrentPassword, req.Body.NewPassword); err != nil {
		return nil, err
	}
	return api.ChangePassword204Response{}, nil
}

// RequestPasswordReset mails a reset link; always 202.
func (s *Server) RequestPasswordReset(ctx context.Context, req api.RequestPasswordResetRequestObject) (api.RequestPasswordResetResponseObject, error) {
	if err := s.Accounts.RequestPasswordReset(ctx, string(req.Body.Email), client(ctx, nil)); err != nil {
		return nil, err
	}
	return api.RequestPasswordReset202JSONResponse{Accepted: true}, nil
}

// ResetPassword uses a reset token.
func (s *Server) ResetPassword(ctx context.Context, req api.ResetPasswordRequestObject) (api.ResetPasswordResponseObject, error) {
	if err := s.Accounts.ResetPassword(ctx, req.Token, req.Body.NewPassword, client(ctx, nil)); err != nil {
		return nil, err
	}
	return api.ResetPassword204Response{}, nil
}

// ResendVerificationEmail mails a new verification link.
func (s *Server) ResendVerificationEmail(ctx context.Context, req api.ResendVerificationEmailRequestObject) (api.ResendVerificationEmailResponseObject, error) {
	var email *string
	if req.Body != nil && req.Body.Email != nil {
		e := string(*req.Body.Email)
		email = &e
	}
	var caller *access.Caller
	if p, ok := principal(ctx); ok {
		caller = &p.Caller
	}
	if err := s.Accounts.ResendVerification(ctx, caller, email, client(ctx, nil)); err != nil {
		return nil, err
	}
	return api.ResendVerificationEmail202JSONResponse{Accepted: true}, nil
}

var verifyPage = template.Must(template.New("verify").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>B.Ca — {{.Title}}</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem">
<h1>{{.Title}}</h1><p>{{.Text}}</p></body></html>`))

// VerifyEmail follows a verification link: HTML for a browser, JSON for an API client.
func (s *Server) VerifyEmail(ctx context.Context, req api.VerifyEmailRequestObject) (api.VerifyEmailResponseObject, error) {
	u, err := s.Accounts.VerifyEmail(ctx, req.Token)
	html := wantsHTML(ctx)
	switch {
	case err == nil && html:
		return api.VerifyEmail200TexthtmlResponse(htmlBody("Email verified", fmt.Sprintf("%s is verified. You can sign in to the B.Ca app now.", u.Email))), nil
	case err == nil:
		return api.VerifyEmail200JSONResponse{Verified: true, Email: u.Email}, nil
	case html && domain.IsKind(err, domain.KindNotFound):
		page := htmlBody("Link not valid", "This link is unknown, was already used or has expired. Ask the app to send a new one.")
		return api.VerifyEmail404TexthtmlResponse{Body: page.Body, ContentLength: page.ContentLength, Headers: api.VerifyEmail404ResponseHeaders{CacheControl: "no-store"}}, nil
	default:
		return nil, err
	}
}

func htmlBody(title, text string) struct {
	Body          io.Reader
	ContentLength int64
} {
	var b strings.Builder
	_ = verifyPage.Execute(&b, map[string]string{"Title": title, "Text": text})
	return struct {
		Body          io.Reader
		ContentLength int64
	}{Body: strings.NewReader(b.String()), ContentLength: int64(b.Len())}
}

// wantsHTML prefers HTML when the client lists text/html before any JSON type.
func wantsHTML(ctx context.Context) bool {
	info := infoFrom(ctx)
	if info == nil {
		return false
	}
	accept := info.Request.Header.Get("Accept")
	html := strings.Index(accept, "text/html")
	jsonAt := strings.Index(accept, "json")
	return html >= 0 && (jsonAt < 0 || html < jsonAt)
}

// DeactivateAccount closes the caller's account.
func (s *Server) DeactivateAccount(ctx context.Context, req api.DeactivateAccountRequestObject) (api.DeactivateAccountResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if !req.Body.Confirm {
		return nil, domain.Invalid("confirm", "must be true")
	}
	if err := s.Accounts.Deactivate(ctx, p.Caller, req.Body.Password, req.Body.Reason); err != nil {
		return nil, err
	}
	return api.DeactivateAccount204Response{}, nil
}

// SetAccountImage uploads and sets the account image.
func (s *Server) SetAccountImage(ctx context.Context, req api.SetAccountImageRequestObject) (api.SetAccountImageResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	f, err := s.upload(ctx, p.UserID, req.Body)
	if err != nil {
		return nil, err
	}
	u, err := s.Accounts.SetImage(ctx, p.Caller, f.ID)
	if err != nil {
		s.Files.ReleaseAfterCommit(ctx, f.ID)
		return nil, err
	}
	return api.SetAccountImage200JSONResponse(accountOf(u)), nil
}

// DeleteAccountImage removes the account image.
func (s *Server) DeleteAccountImage(ctx context.Context, _ api.DeleteAccountImageRequestObject) (api.DeleteAccountImageResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.Accounts.SetImage(ctx, p.Caller, 0)
	if err != nil {
		return nil, err
	}
	return api.DeleteAccountImage200JSONResponse(accountOf(u)), nil
}

// Cursors are opaque to clients: a base64 of the last id seen.
func encodeCursor(id int64) *string {
	b := binary.BigEndian.AppendUint64(nil, uint64(id))
	c := base64.RawURLEncoding.EncodeToString(b)
	return &c
}

func decodeCursor(c *string) (int64, error) {
	if c == nil || *c == "" {
		return math.MaxInt64, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*c)
	if err != nil || len(b) != 8 {
		return 0, domain.Invalid("cursor", "is not a cursor this server issued")
	}
	id := int64(binary.BigEndian.Uint64(b))
	if id <= 0 {
		return 0, domain.Invalid("cursor", "is not a cursor this server issued")
	}
	return id, nil
}

func pageLimit(l *int) int {
	if l == nil {
		return 20
	}
	return *l
}

// decodeAfter reads an ascending-list cursor: the last id of the previous page (0 = start).
func decodeAfter(c *string) (int64, error) {
	if c == nil || *c == "" {
		return 0, nil
	}
	return decodeCursor(c)
}

// page trims a result fetched with limit+1 rows to limit, and returns the cursor of the next
// page and true when there is one (the CursorPage part of every forward list).
func page[T any](rows []T, limit int, id func(T) int64) ([]T, *string, bool) {
	if len(rows) <= limit {
		return rows, nil, false
	}
	rows = rows[:limit]
	return rows, encodeCursor(id(rows[len(rows)-1])), true
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func accessViewer(p auth.Principal) access.Caller {
	c := p.Caller
	c.ActingProfileID = 0
	return c
}
