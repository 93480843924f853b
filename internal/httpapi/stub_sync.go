package httpapi

import (
	"context"

	"github.com/bca-app/backend/gen/api"
)

// GetSyncFile is not implemented yet.
func (s *Server) GetSyncFile(context.Context, api.GetSyncFileRequestObject) (api.GetSyncFileResponseObject, error) {
	return nil, errNotImplemented
}

// HeadSyncFile is not implemented yet.
func (s *Server) HeadSyncFile(context.Context, api.HeadSyncFileRequestObject) (api.HeadSyncFileResponseObject, error) {
	return nil, errNotImplemented
}

// RebuildSyncFile is not implemented yet.
func (s *Server) RebuildSyncFile(context.Context, api.RebuildSyncFileRequestObject) (api.RebuildSyncFileResponseObject, error) {
	return nil, errNotImplemented
}
