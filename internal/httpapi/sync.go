package httpapi

import (
	"context"
	"strconv"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/internal/syncsvc"
)

// syncHeaders are the headers every sync answer carries: the quoted MD5 of the file's bytes
// (docs/sync.md §3) and whether a newer build is already owed.
func syncHeaders(f syncsvc.File) (etag, pending string) {
	return strconv.Quote(f.ETag), strconv.FormatBool(f.Pending)
}

// HeadSyncFile answers the ETag of the caller's file from the stored state, without reading
// the file (it is built first if the caller has none). The state usually comes from the Redis
// read that authenticated the request, so the poll needs no PostgreSQL (docs/sync.md §3).
func (s *Server) HeadSyncFile(ctx context.Context, req api.HeadSyncFileRequestObject) (api.HeadSyncFileResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	f, err := s.Sync.CurrentCached(ctx, p.UserID, p.SyncState, p.SyncStateRead)
	if err != nil {
		return nil, err
	}
	etag, pending := syncHeaders(f)
	if notModified(req.Params.IfNoneMatch, etag) {
		return api.HeadSyncFile304Response{Headers: api.HeadSyncFile304ResponseHeaders{ETag: &etag, SyncPending: &pending}}, nil
	}
	size := int(f.Size)
	return api.HeadSyncFile200Response{Headers: api.HeadSyncFile200ResponseHeaders{ContentLength: &size, ETag: &etag, SyncPending: &pending}}, nil
}

// GetSyncFile streams the caller's file, redirects to a presigned URL, or answers 304 from the
// stored ETag without touching storage.
func (s *Server) GetSyncFile(ctx context.Context, req api.GetSyncFileRequestObject) (api.GetSyncFileResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	f, err := s.Sync.CurrentCached(ctx, p.UserID, p.SyncState, p.SyncStateRead)
	if err != nil {
		return nil, err
	}
	if etag, pending := syncHeaders(f); notModified(req.Params.IfNoneMatch, etag) {
		return api.GetSyncFile304Response{Headers: api.GetSyncFile304ResponseHeaders{ETag: &etag, SyncPending: &pending}}, nil
	}
	d, err := s.Sync.Open(ctx, f)
	if err != nil {
		return nil, err
	}
	etag, pending := syncHeaders(d.File)
	if d.RedirectURL != "" {
		return api.GetSyncFile302Response{Headers: api.GetSyncFile302ResponseHeaders{ETag: &etag, Location: &d.RedirectURL, SyncPending: &pending}}, nil
	}
	return api.GetSyncFile200ApplicationvndSqlite3Response{
		Body: d.Body /* closed by the generated response */, ContentLength: d.File.Size,
		Headers: api.GetSyncFile200ResponseHeaders{ETag: &etag, SyncPending: &pending},
	}, nil
}

// RebuildSyncFile discards the caller's file, builds it now and returns it like GetSyncFile.
func (s *Server) RebuildSyncFile(ctx context.Context, _ api.RebuildSyncFileRequestObject) (api.RebuildSyncFileResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	f, err := s.Sync.Rebuild(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	d, err := s.Sync.Open(ctx, f)
	if err != nil {
		return nil, err
	}
	etag, pending := syncHeaders(d.File)
	if d.RedirectURL != "" {
		return api.RebuildSyncFile302Response{Headers: api.RebuildSyncFile302ResponseHeaders{ETag: &etag, Location: &d.RedirectURL}}, nil
	}
	return api.RebuildSyncFile200ApplicationvndSqlite3Response{
		Body: d.Body /* closed by the generated response */, ContentLength: d.File.Size,
		Headers: api.RebuildSyncFile200ResponseHeaders{ETag: &etag, SyncPending: &pending},
	}, nil
}
