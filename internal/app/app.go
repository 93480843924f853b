// Package app wires configuration into running components. cmd/ mains and the end-to-end tests
// build the service through it, so both run exactly the same graph.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/account"
	"github.com/bca-app/backend/internal/auth"
	"github.com/bca-app/backend/internal/card"
	"github.com/bca-app/backend/internal/chat"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/httpapi"
	"github.com/bca-app/backend/internal/mail"
	"github.com/bca-app/backend/internal/moderation"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/postgres"
	"github.com/bca-app/backend/internal/profile"
	"github.com/bca-app/backend/internal/push"
	"github.com/bca-app/backend/internal/ratelimit"
	"github.com/bca-app/backend/internal/redisconn"
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/syncqueue"
	"github.com/bca-app/backend/internal/syncsvc"
	"github.com/bca-app/backend/internal/worker"
)

// App is the running service graph.
type App struct {
	Config   config.Config
	Log      *slog.Logger
	Pool     *pgxpool.Pool
	Redis    redis.UniversalClient
	Store    storage.Store
	Registry *prometheus.Registry
	Accounts *account.Service
	Handler  http.Handler
	// Files stores uploads; the worker runs its sweeper of unused uploads.
	Files *files.Service

	// Push delivers to devices (FCM with FIREBASE_CERTIFICATE, otherwise the log); Chat runs
	// rooms, events, pushes and live streams.
	Push push.Sender
	Chat *chat.Service

	// Sync builds and serves sync files; SyncNotifier is the producer every write path calls
	// after commit (SQS with AWS_TASK_SQS_URL, otherwise a NOTIFY to the PostgreSQL-polling
	// workers); Worker keeps files current (RunWorker, or inside this process with
	// EMBEDDED_WORKER).
	Sync         *syncsvc.Service
	SyncNotifier outbox.Notifier
	Worker       *worker.Worker
	stopWorker   func()
	// Queue is the SQS task queue (nil without AWS_TASK_SQS_URL); sender is the API's
	// background producer in front of it.
	Queue  *syncqueue.SQS
	sender *syncqueue.Sender
	// workerDraining is set when RunWorker starts draining: the worker's /readyz answers 503
	// from then on (WorkerReadiness).
	workerDraining atomic.Bool

	// Drain is the API's graceful stop, driven by Serve.
	Drain *httpapi.Drain
}

// New connects to PostgreSQL and Redis, applies migrations when configured, and builds the
// services and the HTTP handler of the API (with the sync worker inside when EMBEDDED_WORKER).
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *App, err error) {
	a, err := connect(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	mailer, err := newMailer(ctx, cfg, log)
	if err != nil {
		return nil, err
	}

	hasher, err := auth.NewHasher(auth.HasherDeps{Params: cfg.Password})
	if err != nil {
		return nil, err
	}
	signer, err := auth.NewSigner(auth.SignerDeps{Key: cfg.SecretKey, TTL: cfg.AccessTokenTTL, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	authn, err := auth.NewAuthenticator(auth.AuthenticatorDeps{
		Signer: signer, Redis: a.Redis, KeyPrefix: cfg.RedisKeyPrefix, Queries: db.New(a.Pool), Log: log,
	})
	if err != nil {
		return nil, err
	}
	limiter, err := ratelimit.New(ratelimit.Deps{Redis: a.Redis, KeyPrefix: cfg.RedisKeyPrefix})
	if err != nil {
		return nil, err
	}
	fileService, err := files.New(files.Deps{
		Pool: a.Pool, Store: a.Store, Log: log, MaxBytes: cfg.MaxUploadBytes, Now: cfg.Now,
		Limits: files.Limits{
			QuotaBytes: cfg.Uploads.QuotaBytes,
			Allow: func(ctx context.Context, userID int64) (bool, time.Duration, error) {
				ctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				return limiter.Allow(ctx, "upload:"+strconv.FormatInt(userID, 10), cfg.Uploads.PerHour, time.Hour)
			},
		},
	})
	if err != nil {
		return nil, err
	}
	a.Files = fileService
	if a.Push, err = newPusher(ctx, cfg, db.New(a.Pool), log); err != nil {
		return nil, err
	}
	// The chat hub lives until Close, not until ctx ends: during a drain (Serve) live streams
	// stay up through SHUTDOWN_DELAY and then end with a retry hint.
	if a.Chat, err = chat.New(context.WithoutCancel(ctx), chat.Deps{
		Pool: a.Pool, Redis: a.Redis, Push: a.Push, Files: fileService, Log: log.With("component", "chat"),
		Settings: chat.Settings{RedisKeyPrefix: cfg.RedisKeyPrefix, Heartbeat: cfg.ChatHeartbeat, StreamsPerUser: cfg.ChatStreamsPerUser,
			WriteTimeout: cfg.ChatWriteTimeout},
		Now: cfg.Now,
	}); err != nil {
		return nil, err
	}
	if err := a.newSync(ctx, log, true); err != nil {
		return nil, err
	}
	notifier := a.SyncNotifier
	profiles, err := profile.New(profile.Deps{Pool: a.Pool, Notifier: notifier, Files: fileService, LeaveChats: a.Chat.LeaveAllRooms})
	if err != nil {
		return nil, err
	}
	cards, err := card.New(card.Deps{Pool: a.Pool, Notifier: notifier, Files: fileService, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	shares, err := card.NewShares(card.SharesDeps{Pool: a.Pool, Cards: cards, Secret: cfg.SecretKey})
	if err != nil {
		return nil, err
	}
	mod, err := moderation.New(moderation.Deps{
		Pool: a.Pool, Notifier: notifier, Redis: a.Redis, KeyPrefix: cfg.RedisKeyPrefix, Sync: a.Sync, Log: log.With("component", "moderation"),
	})
	if err != nil {
		return nil, err
	}
	a.Registry.MustRegister(mod.Collector())
	reports, err := moderation.NewReporter(moderation.ReportDeps{
		Moderation: mod, Profiles: profiles, Cards: cards, Limiter: limiter, PerMinute: cfg.RateLimit.PerAccount,
	})
	if err != nil {
		return nil, err
	}
	if a.Accounts, err = account.New(account.Deps{
		Pool: a.Pool, Hasher: hasher, Signer: signer, Authn: authn,
		Limiter: limiter, Mailer: mailer, Files: fileService, Log: log, Notifier: notifier,
		LeaveChats: a.Chat.LeaveAllRooms, Redis: a.Redis, RedisKeyPrefix: cfg.RedisKeyPrefix, Now: cfg.Now,
		Settings: account.Settings{
			AccessTokenTTL: cfg.AccessTokenTTL, RefreshTokenTTL: cfg.RefreshTokenTTL, EmailTokenTTL: cfg.EmailTokenTTL,
			VerificationRequired: cfg.VerificationRequired(), MailEnabled: cfg.MailEnable, PublicBaseURL: cfg.PublicBaseURL,
			PerAddressPerMinute: cfg.RateLimit.PerAddress, PerAccountPerMinute: cfg.RateLimit.PerAccount,
		},
	}); err != nil {
		return nil, err
	}
	a.Drain = httpapi.NewDrain()
	a.Handler, err = httpapi.New(httpapi.Deps{
		Log: log, Pool: a.Pool, Redis: a.Redis, Registry: a.Registry, Authn: authn, Accounts: a.Accounts, Files: fileService,
		Profiles: profiles, Cards: cards, Chat: a.Chat, Sync: a.Sync, PublicBaseURL: cfg.PublicBaseURL,
		MaxBodyBytes: cfg.MaxBodyBytes, MaxUploadBytes: cfg.MaxUploadBytes, CORSOrigins: cfg.CORSOrigins,
		FileRedirects: cfg.AWS.S3Bucket != "" && cfg.AWS.S3Redirect, SecureCookies: isHTTPS(cfg.PublicBaseURL),
		RequestTimeout: cfg.RequestTimeout,
		Shares:         shares, ShareLimiter: limiter, SharePagePerMinute: cfg.SharePagePerMinute,
		Moderation: mod, Reports: reports, Drain: a.Drain,
	})
	if err != nil {
		return nil, err
	}
	if cfg.EmbeddedWorker {
		a.startEmbeddedWorker()
	}
	return a, nil
}

// connect opens what every process uses: the registry, PostgreSQL (after migrations when
// configured), Redis and the object store.
func connect(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *App, err error) {
	a := &App{Config: cfg, Log: log, Registry: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	if cfg.RunMigrations {
		if err := postgres.Migrate(ctx, cfg.DatabaseURL); err != nil {
			return nil, err
		}
	}
	if a.Pool, err = postgres.Open(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	// Every Redis call has a deadline: a Redis that hangs costs a request REDIS_TIMEOUT, not
	// seconds. No automatic retries (a retry doubles the cost of a hung server); callers decide.
	// A redis+cluster:// URL selects a Redis Cluster client.
	if a.Redis, err = redisconn.Open(cfg.RedisURL, cfg.RedisTimeout); err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if err := a.Redis.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("ping redis: %w", err)
	}
	if a.Store, err = newStore(ctx, cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// NewWorker builds only what bca-worker uses: PostgreSQL, Redis, the object store, the push
// sender for sync pushes, the sync service, the task queue and the worker. No HTTP API, chat or
// mail.
func NewWorker(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *App, err error) {
	a, err := connect(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	// For the sweeper of unused uploads.
	if a.Files, err = files.New(files.Deps{Pool: a.Pool, Store: a.Store, Log: log, MaxBytes: cfg.MaxUploadBytes, Now: cfg.Now}); err != nil {
		return nil, err
	}
	if a.Push, err = newPusher(ctx, cfg, db.New(a.Pool), log); err != nil {
		return nil, err
	}
	if err := a.newSync(ctx, log, false); err != nil {
		return nil, err
	}
	return a, nil
}

// newSync wires the sync pipeline: the producer, the service and the worker. In the API
// (background true) the producer is the background Sender in front of SQS, so no request waits
// for SQS; in the worker process the sweeper's few bumps are sent directly. Without
// AWS_TASK_SQS_URL the producer is a NOTIFY to the PostgreSQL-polling workers.
func (a *App) newSync(ctx context.Context, log *slog.Logger, background bool) error {
	cfg := a.Config
	metrics := syncsvc.NewMetrics(a.Registry)
	a.SyncNotifier = syncqueue.PGNotifier{Pool: a.Pool, Log: log}
	if cfg.AWS.TaskSQSURL != "" {
		awsCfg, err := AWSConfig(ctx, cfg.AWS)
		if err != nil {
			return err
		}
		client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
			if cfg.AWS.EndpointURL != "" {
				o.BaseEndpoint = &cfg.AWS.EndpointURL
			}
		})
		if a.Queue, err = syncqueue.NewSQS(syncqueue.SQSDeps{Client: client, URL: cfg.AWS.TaskSQSURL, Metrics: metrics, Log: log}); err != nil {
			return err
		}
		a.SyncNotifier = a.Queue
		if background {
			opts := syncqueue.DefaultSenderOptions()
			opts.Buffer, opts.Concurrency, opts.Timeout = cfg.Sync.SendBuffer, cfg.Sync.SendConcurrency, cfg.Sync.SendTimeout
			if a.sender, err = syncqueue.NewSender(syncqueue.SenderDeps{Queue: a.Queue, Options: opts, Metrics: metrics, Log: log.With("component", "sync-sender")}); err != nil {
				return err
			}
			a.SyncNotifier = a.sender
		}
	}
	settings := syncsvc.DefaultSettings()
	settings.Redirect = cfg.AWS.S3Bucket != "" && cfg.AWS.S3Redirect
	settings.LockTTL = cfg.Sync.LockTTL
	limiter, err := ratelimit.New(ratelimit.Deps{Redis: a.Redis, KeyPrefix: cfg.RedisKeyPrefix})
	if err != nil {
		return err
	}
	if a.Sync, err = syncsvc.New(syncsvc.Deps{
		Pool: a.Pool, Store: a.Store, Redis: a.Redis, KeyPrefix: cfg.RedisKeyPrefix, Push: a.Push,
		Limiter: limiter, Metrics: metrics, Log: log, Settings: settings, Now: cfg.Now,
	}); err != nil {
		return err
	}
	// Bumps mark the poll's cached sync state stale before they reach the queue (docs/sync.md §3).
	a.SyncNotifier = syncsvc.StateNotifier{Sync: a.Sync, Next: a.SyncNotifier}
	deps := worker.Deps{
		Sync: a.Sync, Queue: a.Queue, Pool: a.Pool, Notifier: a.SyncNotifier, Redis: a.Redis,
		KeyPrefix: cfg.RedisKeyPrefix, Log: log.With("component", "sync-worker"), Now: cfg.Now,
	}
	if a.Files != nil {
		// The scheduled Lambda invocation sweeps unused uploads too (RunWorker runs their loop).
		deps.Uploads = a.Files
	}
	deps.Options = WorkerOptions(cfg.Sync)
	deps.Options.UploadUnusedFor = cfg.Uploads.UnusedTTL
	a.Worker, err = worker.New(deps)
	return err
}

// WorkerOptions are the worker's production options with the configured settings.
func WorkerOptions(c config.SyncPipeline) worker.Options {
	o := worker.Defaults()
	o.Concurrency = c.WorkerConcurrency
	o.Visibility = c.Visibility
	o.WaitTime = c.ReceiveWait
	o.SweepInterval = c.SweepInterval
	o.LagThreshold = c.LagThreshold
	o.ResendInterval = c.ResendInterval
	return o
}

// RunWorker runs the sync worker until ctx ends, then drains it: /readyz answers 503 at once
// (WorkerReadiness), no new work is taken,
// messages received meanwhile go back to the queue, and in-flight builds may finish within
// SHUTDOWN_TIMEOUT; builds still running then are cut off with syncsvc.ErrStopping, which
// releases their locks and returns their messages to visibility. The body of cmd/bca-worker;
// a drain returns nil whether or not it had to cut builds off.
func (a *App) RunWorker(ctx context.Context) error {
	errc := make(chan error, 1)
	hard, abort := context.WithCancelCause(context.WithoutCancel(ctx))
	defer abort(nil)
	go func() { errc <- a.Worker.Run(hard) }()
	if a.Files != nil {
		go a.Files.RunSweeper(hard, a.Config.Uploads.SweepPeriod, a.Config.Uploads.UnusedTTL)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.workerDraining.Store(true)
	a.Log.Info("stopping the sync worker: not ready; finishing in-flight builds", "deadline", a.Config.Shutdown.Timeout)
	drain, cancel := context.WithTimeout(context.Background(), a.Config.Shutdown.Timeout)
	defer cancel()
	if err := a.Worker.Shutdown(drain); err != nil {
		a.Log.Warn("sync worker did not drain in time; handing its builds back", "err", err)
		abort(syncsvc.ErrStopping)
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
	return <-errc
}

// senderDrainTimeout bounds how long a stopping API sends its buffered sync tasks; what is left
// is re-sent by the sweeper.
const senderDrainTimeout = 5 * time.Second

// startEmbeddedWorker runs the worker inside this process (make run); Close drains it.
func (a *App) startEmbeddedWorker() {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.RunWorker(ctx); err != nil {
			a.Log.Error("embedded sync worker", "err", err)
		}
	}()
	a.stopWorker = func() { stop(); <-done }
}

// Close waits for background work and releases connections.
func (a *App) Close() {
	if a.stopWorker != nil {
		a.stopWorker()
	}
	if a.Accounts != nil {
		a.Accounts.Wait()
	}
	if a.Chat != nil {
		a.Chat.Close()
	}
	if a.sender != nil { // after the services, whose last commits may still notify
		ctx, cancel := context.WithTimeout(context.Background(), senderDrainTimeout)
		if err := a.sender.Close(ctx); err != nil {
			a.Log.Warn("sync task sender", "err", err)
		}
		cancel()
	}
	if a.Redis != nil {
		_ = a.Redis.Close()
	}
	if a.Pool != nil {
		a.Pool.Close()
	}
	if h, ok := a.Log.Handler().(flushingHandler); ok {
		h.w.Flush()
	}
}

// newPusher sends pushes through FCM when FIREBASE_CERTIFICATE is set, otherwise to the log.
func newPusher(ctx context.Context, cfg config.Config, tokens push.Tokens, log *slog.Logger) (push.Sender, error) {
	if cfg.FirebaseCertificate == "" {
		log.Info("push is off: FIREBASE_CERTIFICATE is not set; pushes are logged")
		return push.LogSender{Log: log}, nil
	}
	return push.NewFCM(ctx, push.FCMDeps{
		Certificate: cfg.FirebaseCertificate, Endpoint: cfg.FCMEndpoint, Tokens: tokens, Log: log.With("component", "push"),
	})
}

func isHTTPS(base string) bool { return len(base) > 8 && base[:8] == "https://" }

func newStore(ctx context.Context, cfg config.Config) (storage.Store, error) {
	if cfg.AWS.S3Bucket == "" {
		return storage.NewLocal(cfg.StorageDir)
	}
	s3, err := storage.NewS3(ctx, storage.S3Config{
		Bucket: cfg.AWS.S3Bucket, Region: cfg.AWS.Region, EndpointURL: cfg.AWS.EndpointURL, UsePathStyle: cfg.AWS.S3PathStyle,
		AccessKeyID: cfg.AWS.AccessKeyID, SecretAccessKey: cfg.AWS.SecretAccessKey,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 store: %w", err)
	}
	return s3, nil
}

func newMailer(ctx context.Context, cfg config.Config, log *slog.Logger) (mail.Sender, error) {
	if !cfg.MailEnable || !cfg.AWS.SESEnable {
		return mail.LogSender{Log: log}, nil
	}
	awsCfg, err := AWSConfig(ctx, cfg.AWS)
	if err != nil {
		return nil, err
	}
	client := sesv2.NewFromConfig(awsCfg, func(o *sesv2.Options) {
		if cfg.AWS.EndpointURL != "" {
			o.BaseEndpoint = &cfg.AWS.EndpointURL
		}
	})
	return mail.SESSender{Client: client, From: cfg.MailFrom}, nil
}

// AWSConfig loads the standard AWS configuration, with static keys when they are given.
func AWSConfig(ctx context.Context, c config.AWS) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(c.Region)}
	if c.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("aws config: %w", err)
	}
	return cfg, nil
}
