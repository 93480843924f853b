package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/profile"
)

// profileOf renders a profile view. A redacted view carries only what docs/sync.md §2 lets a viewer
// without access know: id, name, image, privacy and timestamps.
func profileOf(v profile.View) api.Profile {
	p := v.Profile
	out := api.Profile{
		Id: p.ID, Name: p.Name, Private: p.Private, CreatedAt: p.CreatedAt.UTC(), ModifiedAt: p.ModifiedAt.UTC(),
		Version: p.Version, Deleted: p.DeletedAt != nil, Redacted: v.Visibility != access.Full, Mine: v.Mine,
		Data: api.ProfileData{},
	}
	if p.ImageFileKey != nil {
		url := files.URL(*p.ImageFileKey)
		out.ImageUrl = &url
	}
	if p.DeletedAt != nil {
		t := p.DeletedAt.UTC()
		out.DeletedAt = &t
	}
	if out.Redacted {
		out.Private = true
		return out
	}
	out.TeamName, out.Description = p.TeamName, p.Description
	out.CanAnonymousInvite, out.IsFollowListPublic = p.CanAnonymousInvite, p.IsFollowListPublic
	_ = json.Unmarshal(p.Data, &out.Data) // stored data passed the same schema on the way in
	c := profile.ContactsOf(func(field string) map[string]api.ProfileDataValue { return out.Data[field].Value })
	out.Email, out.Phone, out.Sns, out.Address = c.Email, c.Phone, c.SNS, c.Address
	return out
}

func ownView(p db.Profile) profile.View {
	return profile.View{Profile: p, Visibility: access.Full, Mine: true}
}

func etag(v profile.View) *string {
	e := v.ETag()
	return &e
}

// notModified reports whether an If-None-Match header names the current ETag. It compares
// weakly, as RFC 9110 §13.1.2 asks: a W/ prefix, which a proxy may add, does not stop a match.
func notModified(ifNoneMatch *string, current string) bool {
	if ifNoneMatch == nil {
		return false
	}
	for _, tag := range strings.Split(*ifNoneMatch, ",") {
		if tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/"); tag == current || tag == "*" {
			return true
		}
	}
	return false
}

// ListMyProfiles lists the caller's profiles.
func (s *Server) ListMyProfiles(ctx context.Context, req api.ListMyProfilesRequestObject) (api.ListMyProfilesResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	after, err := decodeAfter(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := pageLimit(req.Params.Limit)
	rows, err := s.Profiles.ListMine(ctx, p.UserID, after, limit+1)
	if err != nil {
		return nil, err
	}
	out := api.ListMyProfiles200JSONResponse{Items: []api.Profile{}}
	rows, out.NextCursor, out.HasMore = page(rows, limit, func(r db.Profile) int64 { return r.ID })
	for _, r := range rows {
		out.Items = append(out.Items, profileOf(ownView(r)))
	}
	return out, nil
}

// CreateProfile creates a profile of the caller.
func (s *Server) CreateProfile(ctx context.Context, req api.CreateProfileRequestObject) (api.CreateProfileResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	created, err := s.Profiles.CreateMine(ctx, p.UserID, createProfileInput(*req.Body))
	if err != nil {
		return nil, err
	}
	// Refresh the acting set cached with the sessions; until then the new profile is checked in
	// PostgreSQL (httpapi.viewer), so a failure here only costs speed.
	if err := s.Authn.UserChanged(ctx, p.UserID); err != nil {
		s.Log.WarnContext(ctx, "refresh cached sessions after a new profile", "err", err)
	}
	v := ownView(created)
	return api.CreateProfile201JSONResponse{Body: profileOf(v), Headers: api.CreateProfile201ResponseHeaders{ETag: etag(v)}}, nil
}

// GetProfile reads a profile under the visibility rules.
func (s *Server) GetProfile(ctx context.Context, req api.GetProfileRequestObject) (api.GetProfileResponseObject, error) {
	v, err := s.viewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	view, err := s.Profiles.Get(ctx, v, req.ProfileId)
	if err != nil {
		return nil, err
	}
	tag := view.ETag()
	if notModified(req.Params.IfNoneMatch, tag) {
		return api.GetProfile304Response{Headers: api.NotModifiedResponseHeaders{ETag: &tag}}, nil
	}
	key := profileBodyKey{id: view.Profile.ID, version: view.Profile.Version, visibility: view.Visibility, mine: view.Mine}
	body, ok := s.profileBodies.Get(key)
	if !ok {
		if body, err = encodeProfile(view); err != nil {
			return nil, err
		}
		if len(body) <= maxMemoProfileBody {
			s.profileBodies.Put(key, body)
		}
	}
	return profileBody{body: body, etag: tag}, nil
}

// encodeProfile is the JSON answer of a view, as the generated response encodes it (with the
// encoder's trailing newline).
func encodeProfile(v profile.View) ([]byte, error) {
	b, err := json.Marshal(profileOf(v))
	return append(b, '\n'), err
}

// A profile's answer is the same for everyone who sees it the same way until its version
// changes: every write to what the answer shows bumps the version (docs/architecture.md,
// "Conventions"; TestEveryWriteOfAProfileRowBumpsItsVersion holds queries/ to it), which is why
// the version is its ETag. The server keeps the encoded answers of the profiles it served last
// (at most memoProfileBodies of up to maxMemoProfileBody bytes, 16 MiB), so reading a profile
// again costs a lookup instead of decoding its data and encoding the answer.
const (
	memoProfileBodies  = 2048
	maxMemoProfileBody = 8 << 10
)

type profileBodyKey struct {
	id, version int64
	visibility  access.Visibility
	mine        bool
}

// profileBody is getProfile's 200 answer from its encoding: the bytes and headers that
// api.GetProfile200JSONResponse writes.
type profileBody struct {
	body []byte
	etag string
}

func (r profileBody) VisitGetProfileResponse(w http.ResponseWriter) error {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h.Set("ETag", r.etag)
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(r.body)
	return err
}

// UpdateProfile changes the caller's profile.
func (s *Server) UpdateProfile(ctx context.Context, req api.UpdateProfileRequestObject) (api.UpdateProfileResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	b := req.Body
	in := profile.UpdateInput{Name: b.Name, TeamName: b.TeamName, Description: b.Description,
		Private: b.Private, CanAnonymousInvite: b.CanAnonymousInvite, IsFollowListPublic: b.IsFollowListPublic}
	if b.Data != nil {
		in.Data = *b.Data
	}
	updated, err := s.Profiles.Update(ctx, p.UserID, req.ProfileId, req.Params.IfMatch, in)
	if err != nil {
		return nil, err
	}
	v := ownView(updated)
	return api.UpdateProfile200JSONResponse{Body: profileOf(v), Headers: api.UpdateProfile200ResponseHeaders{ETag: etag(v)}}, nil
}

// DeleteProfile soft-deletes the caller's profile.
func (s *Server) DeleteProfile(ctx context.Context, req api.DeleteProfileRequestObject) (api.DeleteProfileResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	// The profile leaves the acting set cached with the caller's sessions on every process.
	if err := s.Authn.Revoking(ctx, p.UserID, func() error {
		return s.Profiles.Delete(ctx, p.UserID, req.ProfileId, req.Params.IfMatch)
	}); err != nil {
		return nil, err
	}
	return api.DeleteProfile204Response{}, nil
}

// SetProfileImage uploads and sets the image of the caller's profile.
func (s *Server) SetProfileImage(ctx context.Context, req api.SetProfileImageRequestObject) (api.SetProfileImageResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.Profiles.Get(ctx, accessViewer(p), req.ProfileId); err != nil {
		return nil, err
	}
	f, err := s.upload(ctx, p.UserID, req.Body)
	if err != nil {
		return nil, err
	}
	updated, err := s.Profiles.SetImage(ctx, p.UserID, req.ProfileId, f.ID)
	if err != nil {
		s.Files.ReleaseAfterCommit(ctx, f.ID)
		return nil, err
	}
	v := ownView(updated)
	return api.SetProfileImage200JSONResponse{Body: profileOf(v), Headers: api.SetProfileImage200ResponseHeaders{ETag: etag(v)}}, nil
}

// DeleteProfileImage removes the image of the caller's profile.
func (s *Server) DeleteProfileImage(ctx context.Context, req api.DeleteProfileImageRequestObject) (api.DeleteProfileImageResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	updated, err := s.Profiles.SetImage(ctx, p.UserID, req.ProfileId, 0)
	if err != nil {
		return nil, err
	}
	v := ownView(updated)
	return api.DeleteProfileImage200JSONResponse{Body: profileOf(v), Headers: api.DeleteProfileImage200ResponseHeaders{ETag: etag(v)}}, nil
}

func relationOf(r profile.Relation) api.Relation {
	out := api.Relation{FromProfileId: r.From, ToProfileId: r.To, CreatedAt: utc(r.CreatedAt), ModifiedAt: utc(r.ModifiedAt)}
	if r.Status != access.None {
		st := api.RelationStatus(r.Status.String())
		out.Status = &st
	}
	return out
}

// GetRelation reads the acting profile's relation to a profile.
func (s *Server) GetRelation(ctx context.Context, req api.GetRelationRequestObject) (api.GetRelationResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	r, err := s.Profiles.GetRelation(ctx, v, req.ProfileId)
	if err != nil {
		return nil, err
	}
	return api.GetRelation200JSONResponse(relationOf(r)), nil
}

// SetRelation follows, hides or blocks a profile.
func (s *Server) SetRelation(ctx context.Context, req api.SetRelationRequestObject) (api.SetRelationResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	status, ok := access.ParseStatus(string(req.Body.Status))
	if !ok {
		return nil, domain.Invalid("status", "must be FOLLOW, HIDE or BLOCK")
	}
	r, err := s.Profiles.SetRelation(ctx, v, req.ProfileId, status)
	if err != nil {
		return nil, err
	}
	return api.SetRelation200JSONResponse(relationOf(r)), nil
}

// DeleteRelation removes the acting profile's relation to a profile.
func (s *Server) DeleteRelation(ctx context.Context, req api.DeleteRelationRequestObject) (api.DeleteRelationResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	if err := s.Profiles.DeleteRelation(ctx, v, req.ProfileId); err != nil {
		return nil, err
	}
	return api.DeleteRelation204Response{}, nil
}

// ListFollowRequests lists pending requests to the caller's profile.
func (s *Server) ListFollowRequests(ctx context.Context, req api.ListFollowRequestsRequestObject) (api.ListFollowRequestsResponseObject, error) {
	v, err := s.viewer(ctx, nil)
	if err != nil {
		return nil, err
	}
	after, err := decodeAfter(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := pageLimit(req.Params.Limit)
	rows, err := s.Profiles.ListFollowRequests(ctx, v, req.ProfileId, after, limit+1)
	if err != nil {
		return nil, err
	}
	out := api.ListFollowRequests200JSONResponse{Items: []api.FollowRequest{}}
	rows, out.NextCursor, out.HasMore = page(rows, limit, func(r profile.Listed) int64 { return r.Profile.ID })
	for _, r := range rows {
		out.Items = append(out.Items, api.FollowRequest{Profile: profileOf(r.View), RequestedAt: r.RelatedAt.UTC()})
	}
	return out, nil
}

// AcceptFollowRequest accepts a pending request.
func (s *Server) AcceptFollowRequest(ctx context.Context, req api.AcceptFollowRequestRequestObject) (api.AcceptFollowRequestResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.Profiles.AcceptFollowRequest(ctx, p.UserID, req.ProfileId, req.RequesterProfileId)
	if err != nil {
		return nil, err
	}
	return api.AcceptFollowRequest200JSONResponse(relationOf(r)), nil
}

// RejectFollowRequest denies a pending request.
func (s *Server) RejectFollowRequest(ctx context.Context, req api.RejectFollowRequestRequestObject) (api.RejectFollowRequestResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Profiles.RejectFollowRequest(ctx, p.UserID, req.ProfileId, req.RequesterProfileId); err != nil {
		return nil, err
	}
	return api.RejectFollowRequest204Response{}, nil
}

func (s *Server) follows(ctx context.Context, acting *int64, profileID int64, incoming bool, cursor *string, l *int) (api.ProfileList, error) {
	v, err := s.viewer(ctx, acting)
	if err != nil {
		return api.ProfileList{}, err
	}
	after, err := decodeAfter(cursor)
	if err != nil {
		return api.ProfileList{}, err
	}
	limit := pageLimit(l)
	rows, err := s.Profiles.ListFollows(ctx, v, profileID, incoming, after, limit+1)
	if err != nil {
		return api.ProfileList{}, err
	}
	out := api.ProfileList{Items: []api.Profile{}}
	rows, out.NextCursor, out.HasMore = page(rows, limit, func(r profile.Listed) int64 { return r.Profile.ID })
	for _, r := range rows {
		out.Items = append(out.Items, profileOf(r.View))
	}
	return out, nil
}

// ListFollowers lists the followers of a profile.
func (s *Server) ListFollowers(ctx context.Context, req api.ListFollowersRequestObject) (api.ListFollowersResponseObject, error) {
	out, err := s.follows(ctx, req.Params.XProfileId, req.ProfileId, true, req.Params.Cursor, req.Params.Limit)
	if err != nil {
		return nil, err
	}
	return api.ListFollowers200JSONResponse(out), nil
}

// ListFollowing lists the profiles a profile follows.
func (s *Server) ListFollowing(ctx context.Context, req api.ListFollowingRequestObject) (api.ListFollowingResponseObject, error) {
	out, err := s.follows(ctx, req.Params.XProfileId, req.ProfileId, false, req.Params.Cursor, req.Params.Limit)
	if err != nil {
		return nil, err
	}
	return api.ListFollowing200JSONResponse(out), nil
}

// ExportProfileVCard renders what the caller may see of a profile as a vCard.
func (s *Server) ExportProfileVCard(ctx context.Context, req api.ExportProfileVCardRequestObject) (api.ExportProfileVCardResponseObject, error) {
	v, err := s.viewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	view, err := s.Profiles.Get(ctx, v, req.ProfileId)
	if err != nil {
		return nil, err
	}
	card := profile.VCard(view, s.PublicBaseURL)
	return api.ExportProfileVCard200TextvcardResponse{Body: strings.NewReader(card), ContentLength: int64(len(card))}, nil
}
