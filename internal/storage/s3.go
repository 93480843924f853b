package storage

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3Config selects a bucket and how to reach it. Empty fields fall back to
// the AWS SDK's defaults (environment, shared config, instance role).
type S3Config struct {
	Bucket string
	Region string
	// EndpointURL points the client at an S3-compatible server (moto in
	// tests) instead of AWS.
	EndpointURL string
	// UsePathStyle addresses buckets as http://host/bucket/key, which
	// servers without per-bucket host names (moto, MinIO) need.
	UsePathStyle    bool
	AccessKeyID     string
	SecretAccessKey string
}

// S3 stores objects in an S3 bucket.
type S3 struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
}

var _ Store = (*S3)(nil)

// md5MetadataKey is the user metadata entry (x-amz-meta-md5) holding the MD5
// we computed while uploading; S3's ETag is not an MD5 for multipart or
// KMS-encrypted objects.
const md5MetadataKey = "md5"

// NewS3 returns a store for cfg.Bucket. It does not contact S3.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 storage: no bucket configured")
	}
	var loadOpts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("s3 storage: load AWS config: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.EndpointURL != "" {
			o.BaseEndpoint = aws.String(cfg.EndpointURL)
		}
		o.UsePathStyle = cfg.UsePathStyle
		// Put sends Content-MD5, which S3 verifies against what it received;
		// an additional CRC is redundant and not every S3-compatible server
		// accepts the SDK's default checksum headers.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		// Responses are still validated when S3 has a checksum to compare;
		// objects we upload have none, which is not worth a log line each.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &S3{client: client, presign: s3.NewPresignClient(client), bucket: cfg.Bucket}, nil
}

// EnsureBucket creates the bucket unless it exists already; for tests and
// the dev runner, which start with an empty S3.
func (s *S3) EnsureBucket(ctx context.Context) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}
	// us-east-1 is the one region that rejects an explicit constraint.
	if region := s.client.Options().Region; region != "" && region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(region),
		}
	}
	_, err := s.client.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", s.bucket, err)
	}
	return nil
}

// Put spools r to a temporary file while hashing it, then uploads it with a
// single PutObject: S3 needs the length up front, and a single PutObject is
// atomic. Objects are at most tens of MiB, so one request is fine.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, contentType string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	contentType = defaultContentType(contentType)
	spool, err := os.CreateTemp("", "bca-s3-put-*")
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: spool: %w", key, err)
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	src := newHashingReader(ctx, r)
	if _, err := io.Copy(spool, src); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: read: %w", key, err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: spool: %w", key, err)
	}
	sum := src.md5.Sum(nil)
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(key),
		Body:          spool,
		ContentLength: aws.Int64(src.n),
		ContentType:   aws.String(contentType),
		ContentMD5:    aws.String(base64.StdEncoding.EncodeToString(sum)),
		Metadata:      map[string]string{md5MetadataKey: hex.EncodeToString(sum)},
	})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	// PutObject does not return LastModified; our clock is close enough and
	// saves a request. Head gives S3's own time.
	return ObjectInfo{Key: key, Size: src.n, MD5: hex.EncodeToString(sum), ContentType: contentType, ModTime: time.Now()}, nil
}

// Get streams the object from S3.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return nil, ObjectInfo{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, ObjectInfo{}, s.objectError("get", key, err)
	}
	info := objectInfo(key, out.ContentLength, out.Metadata, out.ETag, out.ContentType, out.LastModified)
	return out.Body, info, nil
}

// Head asks S3 for the object's metadata.
func (s *S3) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return ObjectInfo{}, s.objectError("head", key, err)
	}
	return objectInfo(key, out.ContentLength, out.Metadata, out.ETag, out.ContentType, out.LastModified), nil
}

// Delete removes the object; S3 itself treats missing keys as deleted.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// PresignGet signs a GET URL valid for ttl. Signing is local: it neither
// contacts S3 nor checks that the object exists.
func (s *S3) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	if err := ValidateKey(key); err != nil {
		return "", false, err
	}
	req, err := s.presign.PresignGetObject(ctx,
		&s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)},
		s3.WithPresignExpires(ttl))
	if err != nil {
		return "", false, fmt.Errorf("presign %s: %w", key, err)
	}
	return req.URL, true, nil
}

// objectError turns S3's "no such key" answers into ErrNotFound. A missing
// bucket stays a distinct error on Get, as it is a configuration problem;
// HEAD responses have no body, so S3 cannot tell the two apart there.
func (s *S3) objectError(op, key string, err error) error {
	var noSuchKey *types.NoSuchKey
	var notFound *types.NotFound
	if errors.As(err, &noSuchKey) || errors.As(err, &notFound) {
		return fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return fmt.Errorf("%s %s in bucket %s: %w", op, key, s.bucket, err)
}

func objectInfo(key string, size *int64, metadata map[string]string, etag, contentType *string, modTime *time.Time) ObjectInfo {
	return ObjectInfo{
		Key:         key,
		Size:        aws.ToInt64(size),
		MD5:         objectMD5(metadata, aws.ToString(etag)),
		ContentType: aws.ToString(contentType),
		ModTime:     aws.ToTime(modTime),
	}
}

// objectMD5 prefers the MD5 we stored. For objects uploaded by something
// else it falls back to the ETag when that has the shape of a plain MD5
// (multipart ETags end in "-<parts>" and are not).
func objectMD5(metadata map[string]string, etag string) string {
	if sum, ok := metadata[md5MetadataKey]; ok {
		return sum
	}
	etag = strings.Trim(etag, `"`)
	if len(etag) == 32 {
		if _, err := hex.DecodeString(etag); err == nil {
			return strings.ToLower(etag)
		}
	}
	return ""
}

// Check is the store's readiness: the bucket exists and these credentials may use it.
func (s *S3) Check(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); err != nil {
		return fmt.Errorf("bucket %s: %w", s.bucket, err)
	}
	return nil
}
