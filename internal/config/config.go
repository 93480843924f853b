// Package config reads the service configuration from the environment once, at start.
//
// Every value is validated here; a bad or missing value stops the process with a message naming
// the variable, instead of failing later on the first request that needs it.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bca-app/backend/internal/redisconn"
)

// Config is the whole configuration of the API server and the worker.
type Config struct {
	HTTPAddr      string // HTTP_ADDR
	PublicBaseURL string // PUBLIC_BASE_URL: absolute base of links in mails and share pages
	DatabaseURL   string // DATABASE_URL
	// RedisURL is redis:// or rediss:// for one node, redis+cluster:// or rediss+cluster:// with
	// a comma-separated list of seed nodes for a Redis Cluster (see internal/redisconn).
	RedisURL string // REDIS_URL
	// RedisKeyPrefix namespaces every key, so several deployments (or tests) can share a Redis.
	RedisKeyPrefix string // REDIS_KEY_PREFIX
	SecretKey      []byte // SECRET_KEY: signs access tokens; at least 32 bytes

	AccessTokenTTL  time.Duration // ACCESS_TOKEN_TTL
	RefreshTokenTTL time.Duration // REFRESH_TOKEN_TTL
	EmailTokenTTL   time.Duration // EMAIL_TOKEN_TTL

	MailEnable                   bool   // MAIL_ENABLE
	MailFrom                     string // MAIL_FROM
	SignInAfterEmailVerification bool   // SIGNIN_AFTER_EMAIL_VERIFICATION

	Password PasswordHashing

	MaxUploadBytes int64 // MAX_UPLOAD_BYTES
	MaxBodyBytes   int64 // MAX_BODY_BYTES: JSON bodies
	CORSOrigins    []string

	StorageDir string // STORAGE_DIR: the local object store when no S3 bucket is configured
	AWS        AWS

	FirebaseCertificate string // FIREBASE_CERTIFICATE: path or JSON; push is logged when empty
	FCMEndpoint         string // FCM_ENDPOINT: overrides the FCM API base (tests)

	ChatHeartbeat      time.Duration // CHAT_HEARTBEAT: interval of the live chat streams' heartbeat
	ChatStreamsPerUser int           // CHAT_STREAMS_PER_USER: live chat streams an account may hold open

	RateLimit RateLimits

	// Sync tunes the sync pipeline: the worker and the API's background sender.
	Sync SyncPipeline

	// Deadlines of dependencies and requests (a dependency that hangs costs this much at most).
	RedisTimeout     time.Duration // REDIS_TIMEOUT: dial, read and write timeout of every Redis call
	RequestTimeout   time.Duration // REQUEST_TIMEOUT: budget of one request (streams excepted)
	ChatWriteTimeout time.Duration // CHAT_WRITE_TIMEOUT: one write to a live stream; a stalled reader is cut off

	Uploads Uploads

	// Shutdown is the graceful drain on SIGTERM of bca-api and bca-worker.
	Shutdown Shutdown

	// SharePagePerMinute bounds requests per client address to the public share pages, QR codes
	// and vCards under /c/ (RATE_LIMIT_SHARE_PAGE, per minute).
	SharePagePerMinute int

	// RunMigrations applies pending migrations at start (MIGRATE_ON_START): on by default for
	// bca-api and make run, off by default for bca-worker (LoadWorker).
	RunMigrations bool
	// EmbeddedWorker runs the sync worker inside the API process (local default).
	EmbeddedWorker bool // EMBEDDED_WORKER
	LogLevel       string

	// Now is the clock the services compare times with (expiries, back-offs, leases, ages); nil
	// is the real clock. It is never read from the environment: tests set it to move time
	// forward instead of sleeping.
	Now func() time.Time
}

// PasswordHashing holds the argon2id cost. The defaults are OWASP's recommendation
// (m=19 MiB, t=2, p=1); tests lower them because the race detector makes argon2 slow.
type PasswordHashing struct {
	MemoryKiB   uint32 // PASSWORD_HASH_MEMORY_KIB
	Iterations  uint32 // PASSWORD_HASH_ITERATIONS
	Parallelism uint8  // PASSWORD_HASH_PARALLELISM
}

// AWS settings; with no bucket and no queue the local defaults are used.
type AWS struct {
	Region          string // AWS_REGION
	AccessKeyID     string // AWS_ACCESS_KEY_ID
	SecretAccessKey string // AWS_SECRET_ACCESS_KEY
	EndpointURL     string // AWS_ENDPOINT_URL
	S3Bucket        string // AWS_S3_BUCKET_NAME
	S3PathStyle     bool   // AWS_S3_PATH_STYLE
	S3Redirect      bool   // AWS_S3_REDIRECT: answer downloads with a presigned redirect
	TaskSQSURL      string // AWS_TASK_SQS_URL
	SESEnable       bool   // AWS_SES_ENABLE
}

// SyncPipeline holds the sync worker's and the sync task sender's settings (docs/sync.md §4).
type SyncPipeline struct {
	WorkerHTTPAddr    string        // WORKER_HTTP_ADDR: bca-worker's /metrics, /healthz, /readyz
	WorkerConcurrency int           // SYNC_WORKER_CONCURRENCY: receive loops (users built at once)
	Visibility        time.Duration // SYNC_VISIBILITY: SQS visibility a worker asks for, renewed by the heartbeat
	ReceiveWait       time.Duration // SYNC_RECEIVE_WAIT: SQS long-poll wait
	LockTTL           time.Duration // SYNC_LOCK_TTL: a crashed builder's per-user lock lapses after it
	SweepInterval     time.Duration // SYNC_SWEEP_INTERVAL: garbage, time-stale files, gauges
	LagThreshold      time.Duration // SYNC_LAG_THRESHOLD: a user lagging this long has the work re-sent
	ResendInterval    time.Duration // SYNC_RESEND_INTERVAL: how often lagging users are looked for
	SendBuffer        int           // SYNC_SEND_BUFFER: bumps the API's sender holds in memory
	SendConcurrency   int           // SYNC_SEND_CONCURRENCY: SendMessageBatch calls in flight
	SendTimeout       time.Duration // SYNC_SEND_TIMEOUT: bound of one SendMessageBatch call
}

// Shutdown is the graceful drain on SIGTERM (README: deployment).
type Shutdown struct {
	// Delay (SHUTDOWN_DELAY): bca-api answers /readyz with 503 for this long before it stops
	// accepting connections, so a load balancer's health checks take it out of rotation first.
	Delay time.Duration
	// Timeout (SHUTDOWN_TIMEOUT): in-flight requests (bca-api) and builds (bca-worker) may
	// finish within this; then requests are cut off and builds handed back.
	Timeout time.Duration
}

// RateLimits are requests per minute.
type RateLimits struct {
	PerAddress int // RATE_LIMIT_PER_ADDRESS: sensitive anonymous operations, per client address
	PerAccount int // RATE_LIMIT_PER_ACCOUNT: sign-in attempts and mails, per account
}

// Uploads bound what one account may upload (docs/product.md §7).
type Uploads struct {
	PerHour     int           // UPLOAD_RATE_PER_HOUR: uploads per account per hour (429 beyond)
	QuotaBytes  int64         // UPLOAD_QUOTA_BYTES: bytes stored per account (413 beyond)
	UnusedTTL   time.Duration // UPLOAD_UNUSED_TTL: an upload attached to nothing is removed after this
	SweepPeriod time.Duration // UPLOAD_SWEEP_PERIOD: how often the sweeper looks for unused uploads
}

// Defaults are the local, one-machine settings; Load overrides them from the environment.
func Defaults() Config {
	return Config{
		HTTPAddr:                     "127.0.0.1:8080",
		PublicBaseURL:                "http://127.0.0.1:8080",
		RedisKeyPrefix:               "bca:",
		AccessTokenTTL:               15 * time.Minute,
		RefreshTokenTTL:              30 * 24 * time.Hour,
		EmailTokenTTL:                24 * time.Hour,
		MailEnable:                   true,
		MailFrom:                     "B.Ca <no-reply@bca.invalid>",
		SignInAfterEmailVerification: false,
		Password:                     PasswordHashing{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1},
		MaxUploadBytes:               10 << 20,
		MaxBodyBytes:                 1 << 20,
		StorageDir:                   "./.data/objects",
		AWS:                          AWS{Region: "us-east-1", S3PathStyle: true},
		RateLimit:                    RateLimits{PerAddress: 60, PerAccount: 20},
		ChatHeartbeat:                15 * time.Second,
		ChatStreamsPerUser:           5,
		RedisTimeout:                 250 * time.Millisecond,
		RequestTimeout:               10 * time.Second,
		ChatWriteTimeout:             10 * time.Second,
		Uploads:                      Uploads{PerHour: 120, QuotaBytes: 200 << 20, UnusedTTL: 24 * time.Hour, SweepPeriod: 10 * time.Minute},
		SharePagePerMinute:           120,
		Shutdown:                     Shutdown{Delay: 0, Timeout: 20 * time.Second},
		RunMigrations:                true,
		EmbeddedWorker:               true,
		LogLevel:                     "info",
		Sync: SyncPipeline{
			WorkerHTTPAddr: "127.0.0.1:8081", WorkerConcurrency: 4, Visibility: 15 * time.Second, ReceiveWait: 5 * time.Second,
			LockTTL: 10 * time.Second, SweepInterval: 30 * time.Second, LagThreshold: 10 * time.Second, ResendInterval: 2 * time.Second,
			SendBuffer: 10000, SendConcurrency: 4, SendTimeout: 5 * time.Second,
		},
	}
}

// BaseURLFor is the PUBLIC_BASE_URL used when none is set: the listen address as a loopback
// http URL, so links in mails and vCards point at the port the server actually serves on. A
// wildcard host (":8081", "0.0.0.0:8081", "[::]:8081") becomes 127.0.0.1.
func BaseURLFor(httpAddr string) string {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return "http://" + httpAddr // Validate reports the bad HTTP_ADDR
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Load reads an optional .env file (real environment variables win), then the environment.
func Load(getenv func(string) string, dotenvPath string) (Config, error) {
	fileVars, err := readDotenv(dotenvPath)
	if err != nil {
		return Config{}, err
	}
	lookup := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return fileVars[name]
	}
	return FromLookup(lookup)
}

// LoadWorker is Load for bca-worker: the same variables, but migrations are not applied at
// start unless MIGRATE_ON_START says so (a rollout runs `bcactl migrate` first), and no worker
// is embedded (the process is one).
func LoadWorker(getenv func(string) string, dotenvPath string) (Config, error) {
	fileVars, err := readDotenv(dotenvPath)
	if err != nil {
		return Config{}, err
	}
	lookup := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return fileVars[name]
	}
	c := Defaults()
	c.RunMigrations = false
	c.EmbeddedWorker = false
	return fromLookup(lookup, c)
}

// FromLookup builds a Config from a variable lookup function (tests pass a map).
func FromLookup(lookup func(string) string) (Config, error) {
	return fromLookup(lookup, Defaults())
}

func fromLookup(lookup func(string) string, c Config) (Config, error) {
	p := parser{lookup: lookup}

	p.str("HTTP_ADDR", &c.HTTPAddr)
	p.str("PUBLIC_BASE_URL", &c.PublicBaseURL)
	if lookup("PUBLIC_BASE_URL") == "" {
		c.PublicBaseURL = BaseURLFor(c.HTTPAddr)
	}
	p.str("DATABASE_URL", &c.DatabaseURL)
	p.str("REDIS_URL", &c.RedisURL)
	p.str("REDIS_KEY_PREFIX", &c.RedisKeyPrefix)
	if v := lookup("SECRET_KEY"); v != "" {
		c.SecretKey = []byte(v)
	}
	p.duration("ACCESS_TOKEN_TTL", &c.AccessTokenTTL)
	p.duration("REFRESH_TOKEN_TTL", &c.RefreshTokenTTL)
	p.duration("EMAIL_TOKEN_TTL", &c.EmailTokenTTL)
	p.boolean("MAIL_ENABLE", &c.MailEnable)
	p.str("MAIL_FROM", &c.MailFrom)
	p.boolean("SIGNIN_AFTER_EMAIL_VERIFICATION", &c.SignInAfterEmailVerification)
	p.uint32("PASSWORD_HASH_MEMORY_KIB", &c.Password.MemoryKiB)
	p.uint32("PASSWORD_HASH_ITERATIONS", &c.Password.Iterations)
	var par uint32 = uint32(c.Password.Parallelism)
	p.uint32("PASSWORD_HASH_PARALLELISM", &par)
	c.Password.Parallelism = uint8(min(par, 255))
	p.int64("MAX_UPLOAD_BYTES", &c.MaxUploadBytes)
	p.int64("MAX_BODY_BYTES", &c.MaxBodyBytes)
	if v := lookup("CORS_ORIGINS"); v != "" {
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				c.CORSOrigins = append(c.CORSOrigins, o)
			}
		}
	}
	p.str("STORAGE_DIR", &c.StorageDir)
	p.str("AWS_REGION", &c.AWS.Region)
	p.str("AWS_ACCESS_KEY_ID", &c.AWS.AccessKeyID)
	p.str("AWS_SECRET_ACCESS_KEY", &c.AWS.SecretAccessKey)
	p.str("AWS_ENDPOINT_URL", &c.AWS.EndpointURL)
	p.str("AWS_S3_BUCKET_NAME", &c.AWS.S3Bucket)
	p.boolean("AWS_S3_PATH_STYLE", &c.AWS.S3PathStyle)
	p.boolean("AWS_S3_REDIRECT", &c.AWS.S3Redirect)
	p.str("AWS_TASK_SQS_URL", &c.AWS.TaskSQSURL)
	p.boolean("AWS_SES_ENABLE", &c.AWS.SESEnable)
	p.str("FIREBASE_CERTIFICATE", &c.FirebaseCertificate)
	p.str("FCM_ENDPOINT", &c.FCMEndpoint)
	p.duration("CHAT_HEARTBEAT", &c.ChatHeartbeat)
	p.integer("CHAT_STREAMS_PER_USER", &c.ChatStreamsPerUser)
	p.duration("REDIS_TIMEOUT", &c.RedisTimeout)
	p.duration("REQUEST_TIMEOUT", &c.RequestTimeout)
	p.duration("CHAT_WRITE_TIMEOUT", &c.ChatWriteTimeout)
	p.integer("RATE_LIMIT_PER_ADDRESS", &c.RateLimit.PerAddress)
	p.integer("RATE_LIMIT_PER_ACCOUNT", &c.RateLimit.PerAccount)
	p.str("WORKER_HTTP_ADDR", &c.Sync.WorkerHTTPAddr)
	p.integer("SYNC_WORKER_CONCURRENCY", &c.Sync.WorkerConcurrency)
	p.duration("SYNC_VISIBILITY", &c.Sync.Visibility)
	p.duration("SYNC_RECEIVE_WAIT", &c.Sync.ReceiveWait)
	p.duration("SYNC_LOCK_TTL", &c.Sync.LockTTL)
	p.duration("SYNC_SWEEP_INTERVAL", &c.Sync.SweepInterval)
	p.duration("SYNC_LAG_THRESHOLD", &c.Sync.LagThreshold)
	p.duration("SYNC_RESEND_INTERVAL", &c.Sync.ResendInterval)
	p.integer("SYNC_SEND_BUFFER", &c.Sync.SendBuffer)
	p.integer("SYNC_SEND_CONCURRENCY", &c.Sync.SendConcurrency)
	p.duration("SYNC_SEND_TIMEOUT", &c.Sync.SendTimeout)
	p.integer("UPLOAD_RATE_PER_HOUR", &c.Uploads.PerHour)
	p.int64("UPLOAD_QUOTA_BYTES", &c.Uploads.QuotaBytes)
	p.duration("UPLOAD_UNUSED_TTL", &c.Uploads.UnusedTTL)
	p.duration("UPLOAD_SWEEP_PERIOD", &c.Uploads.SweepPeriod)
	p.integer("RATE_LIMIT_SHARE_PAGE", &c.SharePagePerMinute)
	p.duration("SHUTDOWN_DELAY", &c.Shutdown.Delay)
	p.duration("SHUTDOWN_TIMEOUT", &c.Shutdown.Timeout)
	p.boolean("MIGRATE_ON_START", &c.RunMigrations)
	p.boolean("EMBEDDED_WORKER", &c.EmbeddedWorker)
	p.str("LOG_LEVEL", &c.LogLevel)

	if p.err != nil {
		return Config{}, p.err
	}
	return c, c.Validate()
}

// Validate checks the values that must hold whatever their source.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("HTTP_ADDR", "must be host:port (%v)", err)
	}
	if u, err := url.Parse(c.PublicBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("PUBLIC_BASE_URL", "must be an absolute http(s) URL")
	}
	if c.DatabaseURL == "" {
		bad("DATABASE_URL", "is required")
	}
	if c.RedisURL == "" {
		bad("REDIS_URL", "is required")
	} else if err := redisconn.Validate(c.RedisURL); err != nil {
		bad("REDIS_URL", "must be redis://, rediss://, redis+cluster:// or rediss+cluster:// (%v)", err)
	}
	if len(c.SecretKey) < 32 {
		bad("SECRET_KEY", "is required and must be at least 32 bytes")
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > 24*time.Hour {
		bad("ACCESS_TOKEN_TTL", "must be between 1m and 24h")
	}
	if c.RefreshTokenTTL < c.AccessTokenTTL {
		bad("REFRESH_TOKEN_TTL", "must be at least ACCESS_TOKEN_TTL")
	}
	if c.EmailTokenTTL < time.Minute {
		bad("EMAIL_TOKEN_TTL", "must be at least 1m")
	}
	if c.Password.MemoryKiB < 8 || c.Password.Iterations < 1 || c.Password.Parallelism < 1 {
		bad("PASSWORD_HASH_*", "memory, iterations and parallelism must be positive")
	}
	if c.MaxUploadBytes < 1024 {
		bad("MAX_UPLOAD_BYTES", "must be at least 1024")
	}
	if c.MaxBodyBytes < 1024 {
		bad("MAX_BODY_BYTES", "must be at least 1024")
	}
	if c.AWS.S3Bucket == "" && c.StorageDir == "" {
		bad("STORAGE_DIR", "is required when AWS_S3_BUCKET_NAME is not set")
	}
	if c.AWS.EndpointURL != "" {
		if u, err := url.Parse(c.AWS.EndpointURL); err != nil || u.Host == "" {
			bad("AWS_ENDPOINT_URL", "must be an absolute URL")
		}
	}
	if c.ChatHeartbeat < 10*time.Millisecond || c.ChatHeartbeat > 5*time.Minute {
		bad("CHAT_HEARTBEAT", "must be between 10ms and 5m")
	}
	if c.RedisTimeout < time.Millisecond || c.RedisTimeout > 30*time.Second {
		bad("REDIS_TIMEOUT", "must be between 1ms and 30s")
	}
	if c.RequestTimeout < 100*time.Millisecond {
		bad("REQUEST_TIMEOUT", "must be at least 100ms")
	}
	if c.ChatWriteTimeout < 10*time.Millisecond {
		bad("CHAT_WRITE_TIMEOUT", "must be at least 10ms")
	}
	if c.Shutdown.Delay < 0 || c.Shutdown.Delay > 5*time.Minute {
		bad("SHUTDOWN_DELAY", "must be between 0 and 5m")
	}
	if c.Shutdown.Timeout < 100*time.Millisecond || c.Shutdown.Timeout > 15*time.Minute {
		bad("SHUTDOWN_TIMEOUT", "must be between 100ms and 15m")
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			// The API answers with credentials allowed (the refresh cookie); any origin with
			// credentials would let every web site act as a signed-in user.
			bad("CORS_ORIGINS", "must list origins; * is refused because credentials are allowed")
		}
	}
	if c.ChatStreamsPerUser < 1 {
		bad("CHAT_STREAMS_PER_USER", "must be positive")
	}
	if c.RateLimit.PerAddress < 1 || c.RateLimit.PerAccount < 1 {
		bad("RATE_LIMIT_*", "must be positive")
	}
	errs = append(errs, c.Sync.validate()...)
	if c.Uploads.PerHour < 1 {
		bad("UPLOAD_RATE_PER_HOUR", "must be positive")
	}
	if c.Uploads.QuotaBytes < c.MaxUploadBytes {
		bad("UPLOAD_QUOTA_BYTES", "must be at least MAX_UPLOAD_BYTES")
	}
	if c.Uploads.UnusedTTL < time.Second {
		bad("UPLOAD_UNUSED_TTL", "must be at least 1s")
	}
	if c.Uploads.SweepPeriod < 10*time.Millisecond {
		bad("UPLOAD_SWEEP_PERIOD", "must be at least 10ms")
	}
	if c.SharePagePerMinute < 1 {
		bad("RATE_LIMIT_SHARE_PAGE", "must be positive")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "must be debug, info, warn or error")
	}
	return errors.Join(errs...)
}

func (s SyncPipeline) validate() []error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(s.WorkerHTTPAddr); err != nil {
		bad("WORKER_HTTP_ADDR", "must be host:port (%v)", err)
	}
	if s.WorkerConcurrency < 1 || s.WorkerConcurrency > 256 {
		bad("SYNC_WORKER_CONCURRENCY", "must be between 1 and 256")
	}
	// SQS counts visibility and waits in whole seconds.
	if s.Visibility < 3*time.Second || s.Visibility > 12*time.Hour || s.Visibility%time.Second != 0 {
		bad("SYNC_VISIBILITY", "must be whole seconds between 3s and 12h")
	}
	if s.ReceiveWait < 0 || s.ReceiveWait > 20*time.Second || s.ReceiveWait%time.Second != 0 {
		bad("SYNC_RECEIVE_WAIT", "must be whole seconds between 0s and 20s")
	} else if s.ReceiveWait >= s.Visibility {
		bad("SYNC_RECEIVE_WAIT", "must be shorter than SYNC_VISIBILITY")
	}
	if s.LockTTL < time.Second || s.LockTTL > 10*time.Minute {
		bad("SYNC_LOCK_TTL", "must be between 1s and 10m")
	}
	if s.SweepInterval < time.Second || s.SweepInterval > time.Hour {
		bad("SYNC_SWEEP_INTERVAL", "must be between 1s and 1h")
	}
	if s.LagThreshold < time.Second || s.LagThreshold > time.Hour {
		bad("SYNC_LAG_THRESHOLD", "must be between 1s and 1h")
	}
	if s.ResendInterval < 100*time.Millisecond || s.ResendInterval > s.LagThreshold {
		bad("SYNC_RESEND_INTERVAL", "must be between 100ms and SYNC_LAG_THRESHOLD")
	}
	if s.SendBuffer < 10 || s.SendBuffer > 1_000_000 {
		bad("SYNC_SEND_BUFFER", "must be between 10 and 1000000")
	}
	if s.SendConcurrency < 1 || s.SendConcurrency > 64 {
		bad("SYNC_SEND_CONCURRENCY", "must be between 1 and 64")
	}
	if s.SendTimeout < 100*time.Millisecond || s.SendTimeout > time.Minute {
		bad("SYNC_SEND_TIMEOUT", "must be between 100ms and 1m")
	}
	return errs
}

// VerificationRequired tells whether a new account must follow the mailed link before signing
// in. Without mail there is no link to follow, so it is never required then.
func (c Config) VerificationRequired() bool {
	return c.MailEnable && c.SignInAfterEmailVerification
}

type parser struct {
	lookup func(string) string
	err    error
}

func (p *parser) fail(name, value, want string) {
	p.err = errors.Join(p.err, fmt.Errorf("%s: %q is not %s", name, value, want))
}

func (p *parser) str(name string, dst *string) {
	if v := p.lookup(name); v != "" {
		*dst = v
	}
}

func (p *parser) boolean(name string, dst *bool) {
	if v := p.lookup(name); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			p.fail(name, v, "a boolean (true/false)")
			return
		}
		*dst = b
	}
}

func (p *parser) duration(name string, dst *time.Duration) {
	if v := p.lookup(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			p.fail(name, v, "a duration such as 15m or 720h")
			return
		}
		*dst = d
	}
}

func (p *parser) int64(name string, dst *int64) {
	if v := p.lookup(name); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			p.fail(name, v, "an integer")
			return
		}
		*dst = n
	}
}

func (p *parser) integer(name string, dst *int) {
	var n int64 = int64(*dst)
	p.int64(name, &n)
	*dst = int(n)
}

func (p *parser) uint32(name string, dst *uint32) {
	if v := p.lookup(name); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			p.fail(name, v, "a non-negative integer")
			return
		}
		*dst = uint32(n)
	}
}

// readDotenv reads KEY=VALUE lines; a missing file is not an error (.env is optional).
func readDotenv(path string) (map[string]string, error) {
	vars := map[string]string{}
	if path == "" {
		return vars, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return vars, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: expected KEY=VALUE", path, n)
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		vars[strings.TrimSpace(key)] = value
	}
	return vars, sc.Err()
}
