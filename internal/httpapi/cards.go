package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/card"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/files"
)

func cardOf(c db.Card) api.Card {
	out := api.Card{
		Id: c.ID, ProfileId: c.ProfileID, Name: c.Name, Private: c.Private, Data: api.CardData{},
		CreatedAt: c.CreatedAt.UTC(), ModifiedAt: c.ModifiedAt.UTC(), Version: c.Version, Deleted: c.DeletedAt != nil,
		PreviewFileId: c.PreviewFileID,
	}
	_ = json.Unmarshal(c.Data, &out.Data) // stored as a JSON object by construction
	if c.PreviewFileKey != nil {
		url := files.URL(*c.PreviewFileKey)
		out.PreviewUrl = &url
	}
	out.DeletedAt = utc(c.DeletedAt)
	return out
}

func cardETag(c db.Card) *string {
	e := domain.ETag(c.Version)
	return &e
}

// ListMyCards lists the acting profile's live cards.
func (s *Server) ListMyCards(ctx context.Context, req api.ListMyCardsRequestObject) (api.ListMyCardsResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	out, err := cardPage(req.Params.Cursor, req.Params.Limit, func(after int64, limit int) ([]db.Card, error) {
		return s.Cards.ListOfProfile(ctx, v, s.Profiles, v.ActingProfileID, after, limit)
	})
	if err != nil {
		return nil, err
	}
	return api.ListMyCards200JSONResponse(out), nil
}

// ListProfileCards lists the cards of a profile the caller may see.
func (s *Server) ListProfileCards(ctx context.Context, req api.ListProfileCardsRequestObject) (api.ListProfileCardsResponseObject, error) {
	v, err := s.viewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	out, err := cardPage(req.Params.Cursor, req.Params.Limit, func(after int64, limit int) ([]db.Card, error) {
		return s.Cards.ListOfProfile(ctx, v, s.Profiles, req.ProfileId, after, limit)
	})
	if err != nil {
		return nil, err
	}
	return api.ListProfileCards200JSONResponse(out), nil
}

func cardPage(cursor *string, l *int, list func(after int64, limit int) ([]db.Card, error)) (api.CardList, error) {
	after, err := decodeAfter(cursor)
	if err != nil {
		return api.CardList{}, err
	}
	limit := pageLimit(l)
	rows, err := list(after, limit+1)
	if err != nil {
		return api.CardList{}, err
	}
	out := api.CardList{Items: []api.Card{}}
	rows, out.NextCursor, out.HasMore = page(rows, limit, func(c db.Card) int64 { return c.ID })
	for _, c := range rows {
		out.Items = append(out.Items, cardOf(c))
	}
	return out, nil
}

// CreateCard creates a card for the acting profile, from JSON (with an uploaded preview) or from
// a multipart form carrying the image.
func (s *Server) CreateCard(ctx context.Context, req api.CreateCardRequestObject) (api.CreateCardResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	var in card.Input
	var uploaded int64
	switch {
	case req.JSONBody != nil:
		b := req.JSONBody
		in = card.Input{Name: &b.Name, Private: b.Private, PreviewFileID: b.PreviewFileId}
		if b.Data != nil {
			in.Data = *b.Data
		}
	case req.MultipartBody != nil:
		if in, uploaded, err = s.cardForm(ctx, v.UserID, req.MultipartBody); err != nil {
			return nil, err
		}
	default:
		return nil, domain.Invalid("body", "is required")
	}
	c, err := s.Cards.Create(ctx, v, in)
	if err != nil {
		if uploaded != 0 {
			s.Files.ReleaseAfterCommit(ctx, uploaded)
		}
		return nil, err
	}
	return api.CreateCard201JSONResponse{Body: cardOf(c), Headers: api.CreateCard201ResponseHeaders{ETag: cardETag(c)}}, nil
}

// maxFormField bounds the text fields of a multipart card form.
const maxFormField = 64 << 10

// cardForm reads a multipart card: text fields name, data (a JSON object) and private, and the
// image in field "file", stored as it streams. When the form turns out invalid, the stored
// image is released again, so a failed request leaves nothing behind.
func (s *Server) cardForm(ctx context.Context, userID int64, mr *multipart.Reader) (in card.Input, uploaded int64, err error) {
	defer func() {
		if err != nil && uploaded != 0 {
			s.Files.ReleaseAfterCommit(ctx, uploaded)
			uploaded = 0
		}
	}()
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return in, uploaded, multipartError(err)
		}
		name := part.FormName()
		if name == "file" {
			if uploaded != 0 {
				return in, uploaded, domain.Invalid("file", "only one image per card")
			}
			f, err := s.Files.Upload(ctx, userID, part)
			if err != nil {
				return in, uploaded, multipartError(err)
			}
			uploaded = f.ID
			in.PreviewFileID = &f.ID
			continue
		}
		value, err := io.ReadAll(io.LimitReader(part, maxFormField+1))
		if err != nil {
			return in, uploaded, multipartError(err)
		}
		if len(value) > maxFormField {
			return in, uploaded, domain.Invalid(name, "is too long")
		}
		// The fields follow the rules of the JSON fields they mirror (CreateCardMultipart and
		// CreateCardRequest in openapi.yaml), checked by the same domain values.
		if seen[name] {
			return in, uploaded, domain.Invalid(name, "is given twice")
		}
		seen[name] = true
		switch name {
		case "name":
			v, err := domain.Name("name", string(value), domain.MaxNameLength)
			if err != nil {
				return in, uploaded, err
			}
			in.Name = &v
		case "data":
			data, err := domain.JSONObject("data", value)
			if err != nil {
				return in, uploaded, err
			}
			in.Data = data
		case "private":
			var b bool
			switch string(value) {
			case "true":
				b = true
			case "false":
			default:
				return in, uploaded, domain.Invalid("private", "must be true or false")
			}
			in.Private = &b
		default:
			return in, uploaded, domain.Invalid(name, "unknown field")
		}
	}
	if in.Name == nil {
		return in, uploaded, domain.Invalid("name", "is required")
	}
	if uploaded == 0 {
		return in, uploaded, domain.Invalid("file", "is required")
	}
	return in, uploaded, nil
}

// GetCard reads a card.
func (s *Server) GetCard(ctx context.Context, req api.GetCardRequestObject) (api.GetCardResponseObject, error) {
	v, err := s.viewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	view, err := s.Cards.Get(ctx, v, req.CardId)
	if err != nil {
		return nil, err
	}
	tag := cardETag(view.Card)
	if notModified(req.Params.IfNoneMatch, *tag) {
		return api.GetCard304Response{Headers: api.NotModifiedResponseHeaders{ETag: tag}}, nil
	}
	return api.GetCard200JSONResponse{Body: cardOf(view.Card), Headers: api.GetCard200ResponseHeaders{ETag: tag}}, nil
}

// UpdateCard changes the caller's card.
func (s *Server) UpdateCard(ctx context.Context, req api.UpdateCardRequestObject) (api.UpdateCardResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	b := req.Body
	in := card.Input{Name: b.Name, Private: b.Private, PreviewFileID: b.PreviewFileId}
	if b.Data != nil {
		in.Data = *b.Data
	}
	c, err := s.Cards.Update(ctx, p.UserID, req.CardId, req.Params.IfMatch, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateCard200JSONResponse{Body: cardOf(c), Headers: api.UpdateCard200ResponseHeaders{ETag: cardETag(c)}}, nil
}

// DeleteCard soft-deletes the caller's card.
func (s *Server) DeleteCard(ctx context.Context, req api.DeleteCardRequestObject) (api.DeleteCardResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Cards.Delete(ctx, p.UserID, req.CardId, req.Params.IfMatch); err != nil {
		return nil, err
	}
	return api.DeleteCard204Response{}, nil
}

func subscriptionOf(sub card.Subscription) api.CardSubscription {
	out := api.CardSubscription{CardId: sub.CardID, ProfileId: sub.ProfileID, Subscribed: sub.Subscribed}
	if sub.Row != nil {
		out.CreatedAt = utc(&sub.Row.CreatedAt)
	}
	return out
}

// GetCardSubscription answers whether the acting profile subscribes to a card.
func (s *Server) GetCardSubscription(ctx context.Context, req api.GetCardSubscriptionRequestObject) (api.GetCardSubscriptionResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	sub, err := s.Cards.GetSubscription(ctx, v, req.CardId)
	if err != nil {
		return nil, err
	}
	return api.GetCardSubscription200JSONResponse(subscriptionOf(sub)), nil
}

// SubscribeCard saves a card for the acting profile.
func (s *Server) SubscribeCard(ctx context.Context, req api.SubscribeCardRequestObject) (api.SubscribeCardResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	token := ""
	if req.Body != nil && req.Body.ShareToken != nil {
		token = *req.Body.ShareToken
	}
	sub, err := s.Cards.Subscribe(ctx, v, req.CardId, token)
	if err != nil {
		return nil, err
	}
	return api.SubscribeCard200JSONResponse(subscriptionOf(sub)), nil
}

// UnsubscribeCard removes a saved card of the acting profile.
func (s *Server) UnsubscribeCard(ctx context.Context, req api.UnsubscribeCardRequestObject) (api.UnsubscribeCardResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	if err := s.Cards.Unsubscribe(ctx, v, req.CardId); err != nil {
		return nil, err
	}
	return api.UnsubscribeCard204Response{}, nil
}
