package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/internal/card"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/sharepage"
)

func (s *Server) shareOf(sh card.Share, now time.Time) api.CardShare {
	out := api.CardShare{
		Id: sh.ID, CardId: sh.CardID, CreatedAt: sh.CreatedAt.UTC(), ExpiresAt: utc(sh.ExpiresAt),
		RevokedAt: utc(sh.RevokedAt), UseCount: int(sh.UseCount), Active: sh.Active(now),
	}
	if sh.MaxUses != nil {
		m := int(*sh.MaxUses)
		out.MaxUses = &m
	}
	if sh.Token != "" {
		token := sh.Token
		out.Token = &token
		out.Url = sharepage.PublicURL(s.PublicBaseURL, token)
		out.QrPngUrl, out.QrSvgUrl, out.VcardUrl = out.Url+"/qr.png", out.Url+"/qr.svg", out.Url+".vcf"
		out.AppUrl = sharepage.AppLinkPrefix + token
	}
	return out
}

// CreateCardShare makes a share link for one of the caller's cards; the card names the acting
// profile (docs/product.md §2, §6).
func (s *Server) CreateCardShare(ctx context.Context, req api.CreateCardShareRequestObject) (api.CreateCardShareResponseObject, error) {
	v, err := s.viewer(ctx, nil)
	if err != nil {
		return nil, err
	}
	var in card.ShareInput
	if req.Body != nil {
		in.ExpiresAt, in.MaxUses = req.Body.ExpiresAt, req.Body.MaxUses
	}
	sh, err := s.Shares.Create(ctx, v, req.CardId, in)
	if err != nil {
		return nil, err
	}
	return api.CreateCardShare201JSONResponse(s.shareOf(sh, time.Now())), nil
}

// ListCardShares lists the share links of one of the caller's cards, newest first.
func (s *Server) ListCardShares(ctx context.Context, req api.ListCardSharesRequestObject) (api.ListCardSharesResponseObject, error) {
	v, err := s.viewer(ctx, nil)
	if err != nil {
		return nil, err
	}
	before, err := decodeCursor(req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := 20
	if req.Params.Limit != nil {
		limit = *req.Params.Limit
	}
	rows, err := s.Shares.List(ctx, v, req.CardId, before, limit+1)
	if err != nil {
		return nil, err
	}
	out := api.CardShareList{Items: []api.CardShare{}}
	now := time.Now()
	for i, sh := range rows {
		if i == limit {
			out.NextCursor, out.HasMore = encodeCursor(rows[i-1].ID), true
			break
		}
		out.Items = append(out.Items, s.shareOf(sh, now))
	}
	return api.ListCardShares200JSONResponse(out), nil
}

// RevokeCardShare ends a share link of one of the caller's cards.
func (s *Server) RevokeCardShare(ctx context.Context, req api.RevokeCardShareRequestObject) (api.RevokeCardShareResponseObject, error) {
	v, err := s.viewer(ctx, nil)
	if err != nil {
		return nil, err
	}
	if err := s.Shares.Revoke(ctx, v, req.CardId, req.ShareId); err != nil {
		return nil, err
	}
	return api.RevokeCardShare204Response{}, nil
}

// GetCardShare answers the card a live share link opens, for the app's save screen.
func (s *Server) GetCardShare(ctx context.Context, req api.GetCardShareRequestObject) (api.GetCardShareResponseObject, error) {
	v, err := s.actingViewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	view, err := s.Shares.Open(ctx, v, req.Token)
	if err != nil {
		return nil, err
	}
	out := api.SharedCard{Card: cardOf(view.Card), Subscribed: view.Subscribed, Own: &view.Own}
	out.Profile.Id, out.Profile.Name = view.Card.ProfileID, view.ProfileName
	if view.ProfileImageFileKey != nil {
		u := files.URL(*view.ProfileImageFileKey)
		out.Profile.ImageUrl = &u
	}
	return api.GetCardShare200JSONResponse(out), nil
}

// sharePages mounts the public share pages (/c/…), labelling each request with its operationId
// of openapi.yaml for the access log and metrics.
func (s *Server) sharePages() (http.Handler, error) {
	return sharepage.New(sharepage.Deps{
		Shares: s.Shares, Files: s.Files, Limiter: s.ShareLimiter, PerMinute: s.SharePagePerMinute,
		BaseURL: strings.TrimRight(s.PublicBaseURL, "/"), ClientAddr: clientAddress, Log: s.Log,
		Route: func(r *http.Request, operationID string) {
			if info := infoFrom(r.Context()); info != nil && operationID != "" {
				info.OperationID = operationID
			}
		},
	})
}
