package httpapi

import (
	"context"
	"errors"
	"io"
	"mime/multipart"
	"strconv"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/bca"
	"github.com/bca-app/backend/internal/files"
)

// upload streams the multipart field "file" into the file store. The form has that one part:
// another field is refused, so a client learns about a misspelt field name instead of silently
// uploading nothing.
func (s *Server) upload(ctx context.Context, ownerUserID int64, mr *multipart.Reader) (db.File, error) {
	part, err := mr.NextPart()
	if errors.Is(err, io.EOF) {
		return db.File{}, bca.Invalid("file", "is required")
	}
	if err != nil {
		return db.File{}, multipartError(err)
	}
	defer part.Close()
	if part.FormName() != "file" {
		return db.File{}, bca.Invalid(part.FormName(), "unknown field; send the image as the field \"file\"")
	}
	f, err := s.Files.Upload(ctx, ownerUserID, part)
	if err != nil {
		return db.File{}, multipartError(err)
	}
	return f, nil
}

func multipartError(err error) error {
	if _, ok := bca.AsError(err); ok {
		return err
	}
	if _, _, e := problemFor(err); e.Kind == bca.KindTooLarge {
		return e
	}
	return bca.E(bca.KindInvalid, "request.invalid", "The multipart body is malformed.", bca.FieldError{Field: "file", Reason: err.Error()})
}

func fileOf(f db.File) api.File {
	return api.File{Id: f.ID, Url: files.URL(f.ID), ContentType: f.ContentType, Size: f.Size, CreatedAt: f.CreatedAt.UTC()}
}

// UploadFile stores an image for later use (card previews, chat images).
func (s *Server) UploadFile(ctx context.Context, req api.UploadFileRequestObject) (api.UploadFileResponseObject, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	f, err := s.upload(ctx, p.UserID, req.Body)
	if err != nil {
		return nil, err
	}
	return api.UploadFile201JSONResponse(fileOf(f)), nil
}

// GetFile streams a file, or redirects to a presigned URL of the object store.
func (s *Server) GetFile(ctx context.Context, req api.GetFileRequestObject) (api.GetFileResponseObject, error) {
	d, err := s.Files.Open(ctx, req.FileId, s.FileRedirects)
	if err != nil {
		return nil, err
	}
	if d.RedirectURL != "" {
		return api.GetFile302Response{Headers: api.GetFile302ResponseHeaders{Location: &d.RedirectURL}}, nil
	}
	cache := "private, max-age=86400, immutable" // a file id never changes content
	etag := strconv.Quote(d.File.Md5)
	return api.GetFile200ImageResponse{
		Body: d.Body /* closed by the generated response */, ContentType: d.File.ContentType, ContentLength: d.File.Size,
		Headers: api.GetFile200ResponseHeaders{CacheControl: &cache, ETag: &etag},
	}, nil
}
