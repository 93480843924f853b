package httpapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"

	"github.com/bca-app/backend/gen/api"
	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/files"
)

// upload streams the multipart field "file" into the file store. The form has that one part:
// another field, or a second part after the file, is refused (and the stored file released),
// so a client learns about a misspelt field name or a second image instead of silently losing it.
func (s *Server) upload(ctx context.Context, ownerUserID int64, mr *multipart.Reader) (db.File, error) {
	part, err := mr.NextPart()
	if errors.Is(err, io.EOF) {
		return db.File{}, domain.Invalid("file", "is required")
	}
	if err != nil {
		return db.File{}, multipartError(err)
	}
	defer part.Close()
	if part.FormName() != "file" {
		return db.File{}, domain.Invalid(part.FormName(), "unknown field; send the image as the field \"file\"")
	}
	f, err := s.Files.Upload(ctx, ownerUserID, part)
	if err != nil {
		return db.File{}, multipartError(err)
	}
	if extra, err := mr.NextPart(); !errors.Is(err, io.EOF) {
		s.Files.ReleaseAfterCommit(ctx, f.ID)
		if err != nil {
			return db.File{}, multipartError(err)
		}
		extra.Close()
		return db.File{}, domain.Invalid(extra.FormName(), "only one part, the field \"file\", is accepted")
	}
	return f, nil
}

func multipartError(err error) error {
	if _, ok := domain.AsError(err); ok {
		return err
	}
	if _, _, e := problemFor(err); e.Kind == domain.KindTooLarge {
		return e
	}
	return domain.E(domain.KindInvalid, "request.invalid", "The multipart body is malformed.", domain.FieldError{Field: "file", Reason: err.Error()})
}

func fileOf(f db.File) api.File {
	return api.File{Id: f.ID, Url: files.URL(f.PublicID), ContentType: f.ContentType, Size: f.Size, CreatedAt: f.CreatedAt.UTC()}
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

// fileGuard lets the file service ask the profile and card rules whether a viewer may see what
// a file belongs to.
func (s *Server) fileGuard() files.Guard {
	return files.Guard{
		CanSeeProfile: func(ctx context.Context, v access.Caller, id int64) (bool, error) {
			return visible(s.Profiles.Get(ctx, v, id))
		},
		CanReadCard: func(ctx context.Context, v access.Caller, id int64) (bool, error) {
			return visible(s.Cards.Get(ctx, v, id))
		},
	}
}

func visible[T any](_ T, err error) (bool, error) {
	if domain.IsKind(err, domain.KindNotFound) {
		return false, nil
	}
	return err == nil, err
}

// fileCSP keeps a served file from running anything, should a browser ever render it as more
// than an image.
const fileCSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"

// GetFile streams a file, or redirects to a presigned URL of the object store, to a caller who
// may see what the file belongs to.
func (s *Server) GetFile(ctx context.Context, req api.GetFileRequestObject) (api.GetFileResponseObject, error) {
	v, err := s.viewer(ctx, req.Params.XProfileId)
	if err != nil {
		return nil, err
	}
	d, err := s.Files.Open(ctx, v, req.FileId.String(), s.FileRedirects, s.fileGuard())
	if err != nil {
		return nil, err
	}
	if d.RedirectURL != "" {
		return api.GetFile302Response{Headers: api.GetFile302ResponseHeaders{Location: &d.RedirectURL}}, nil
	}
	cache := "private, max-age=86400, immutable" // a file id never changes content
	etag := strconv.Quote(d.File.Md5)
	disposition := mime.FormatMediaType("inline", map[string]string{"filename": d.File.PublicID + extension(d.File.ContentType)})
	csp := fileCSP
	return api.GetFile200ImageResponse{
		Body: d.Body /* closed by the generated response */, ContentType: d.File.ContentType, ContentLength: d.File.Size,
		Headers: api.GetFile200ResponseHeaders{CacheControl: &cache, ETag: &etag, ContentDisposition: &disposition, ContentSecurityPolicy: &csp},
	}, nil
}

func extension(contentType string) string {
	_, ext, _ := strings.Cut(contentType, "/")
	if ext == "jpeg" {
		ext = "jpg"
	}
	return "." + ext
}
