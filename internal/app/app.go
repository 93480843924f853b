// Package app wires configuration into running components. cmd/ mains and the end-to-end tests
// build the service through it, so both run exactly the same graph.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
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
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/syncsvc"
	"github.com/bca-app/backend/internal/worker"
)

// App is the running service graph.
type App struct {
	Config   config.Config
	Log      *slog.Logger
	Pool     *pgxpool.Pool
	Redis    *redis.Client
	Store    storage.Store
	Registry *prometheus.Registry
	Accounts *account.Service
	Handler  http.Handler

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
}

// New connects to PostgreSQL and Redis, applies migrations when configured, and builds the
// services and the HTTP handler.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *App, err error) {
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
	redisOpts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	a.Redis = redis.NewClient(redisOpts)
	if err := a.Redis.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("ping redis: %w", err)
	}
	if a.Store, err = newStore(ctx, cfg); err != nil {
		return nil, err
	}
	mailer, err := newMailer(ctx, cfg, log)
	if err != nil {
		return nil, err
	}

	hasher, err := auth.NewHasher(cfg.Password)
	if err != nil {
		return nil, err
	}
	signer := auth.NewSigner(cfg.SecretKey, cfg.AccessTokenTTL)
	authn := auth.NewAuthenticator(signer, a.Redis, cfg.RedisKeyPrefix, db.New(a.Pool), log)
	fileService := files.NewService(a.Pool, a.Store, cfg.MaxUploadBytes, log)
	if a.Push, err = newPusher(ctx, cfg, db.New(a.Pool), log); err != nil {
		return nil, err
	}
	if a.Chat, err = chat.NewService(ctx, chat.Deps{
		Pool: a.Pool, Redis: a.Redis, Push: a.Push, Files: fileService, Log: log.With("component", "chat"),
		Settings: chat.Settings{RedisKeyPrefix: cfg.RedisKeyPrefix, Heartbeat: cfg.ChatHeartbeat, StreamsPerUser: cfg.ChatStreamsPerUser},
	}); err != nil {
		return nil, err
	}
	if err := a.newSync(ctx, log); err != nil {
		return nil, err
	}
	notifier := a.SyncNotifier
	profiles := profile.NewService(a.Pool, notifier, fileService, a.Chat.LeaveAllRooms)
	cards := card.NewService(a.Pool, notifier, fileService)
	a.Accounts = account.NewService(account.Deps{
		Pool: a.Pool, Hasher: hasher, Signer: signer, Authn: authn,
		Limiter: ratelimit.New(a.Redis, cfg.RedisKeyPrefix), Mailer: mailer, Files: fileService, Log: log, Notifier: notifier,
		LeaveChats: a.Chat.LeaveAllRooms,
		Settings: account.Settings{
			AccessTokenTTL: cfg.AccessTokenTTL, RefreshTokenTTL: cfg.RefreshTokenTTL, EmailTokenTTL: cfg.EmailTokenTTL,
			VerificationRequired: cfg.VerificationRequired(), MailEnabled: cfg.MailEnable, PublicBaseURL: cfg.PublicBaseURL,
			PerAddressPerMinute: cfg.RateLimit.PerAddress, PerAccountPerMinute: cfg.RateLimit.PerAccount,
		},
	})
	mod := moderation.New(moderation.Deps{
		Pool: a.Pool, Notifier: notifier, Redis: a.Redis, KeyPrefix: cfg.RedisKeyPrefix, Sync: a.Sync, Log: log.With("component", "moderation"),
	})
	a.Registry.MustRegister(moderation.NewCollector(mod))
	reports := moderation.NewReporter(mod, moderation.ReportDeps{
		Profiles: profiles, Cards: cards, Limiter: ratelimit.New(a.Redis, cfg.RedisKeyPrefix), PerMinute: cfg.RateLimit.PerAccount,
	})
	a.Handler, err = httpapi.New(httpapi.Deps{
		Moderation: mod, Reports: reports,
		Log: log, Pool: a.Pool, Redis: a.Redis, Registry: a.Registry, Authn: authn, Accounts: a.Accounts, Files: fileService,
		Profiles: profiles, Cards: cards, Chat: a.Chat, Sync: a.Sync, PublicBaseURL: cfg.PublicBaseURL,
		MaxBodyBytes: cfg.MaxBodyBytes, MaxUploadBytes: cfg.MaxUploadBytes, CORSOrigins: cfg.CORSOrigins,
		FileRedirects: cfg.AWS.S3Bucket != "" && cfg.AWS.S3Redirect, SecureCookies: isHTTPS(cfg.PublicBaseURL),
		RefreshTokenTTL: cfg.RefreshTokenTTL,
	})
	if err != nil {
		return nil, err
	}
	if cfg.EmbeddedWorker {
		a.startEmbeddedWorker()
	}
	return a, nil
}

// newSync wires the sync pipeline: the producer (SQS or NOTIFY), the service and the worker.
func (a *App) newSync(ctx context.Context, log *slog.Logger) error {
	cfg := a.Config
	metrics := syncsvc.NewMetrics(a.Registry)
	var queue *worker.SQSQueue
	a.SyncNotifier = syncsvc.PGNotifier{Pool: a.Pool, Log: log}
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
		queue = worker.NewSQSQueue(client, cfg.AWS.TaskSQSURL, metrics, log)
		a.SyncNotifier = queue
	}
	settings := syncsvc.DefaultSettings()
	settings.Redirect = cfg.AWS.S3Bucket != "" && cfg.AWS.S3Redirect
	a.Sync = syncsvc.New(syncsvc.Deps{
		Pool: a.Pool, Store: a.Store, Redis: a.Redis, KeyPrefix: cfg.RedisKeyPrefix, Push: a.Push,
		Limiter: ratelimit.New(a.Redis, cfg.RedisKeyPrefix), Metrics: metrics, Log: log,
	}, settings)
	a.Worker = worker.New(worker.Deps{
		Sync: a.Sync, Queue: queue, Pool: a.Pool, Notifier: a.SyncNotifier, Redis: a.Redis,
		KeyPrefix: cfg.RedisKeyPrefix, Log: log.With("component", "sync-worker"),
	}, worker.Defaults())
	return nil
}

// RunWorker runs the sync worker until ctx ends, then lets in-flight builds finish (bounded)
// before returning: the body of cmd/bca-worker.
func (a *App) RunWorker(ctx context.Context) error {
	errc := make(chan error, 1)
	hard, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	go func() { errc <- a.Worker.Run(hard) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Log.Info("stopping the sync worker: finishing in-flight builds")
	drain, cancel := context.WithTimeout(context.Background(), workerDrainTimeout)
	defer cancel()
	if err := a.Worker.Shutdown(drain); err != nil {
		a.Log.Warn("sync worker did not drain in time; abandoning its builds", "err", err)
		abort()
	}
	return <-errc
}

// workerDrainTimeout bounds how long a stopping process waits for in-flight builds; an
// abandoned build is retried by another worker once its lock and lease lapse.
const workerDrainTimeout = 30 * time.Second

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
	if a.Redis != nil {
		_ = a.Redis.Close()
	}
	if a.Pool != nil {
		a.Pool.Close()
	}
}

// newPusher sends pushes through FCM when FIREBASE_CERTIFICATE is set, otherwise to the log.
func newPusher(ctx context.Context, cfg config.Config, tokens push.Tokens, log *slog.Logger) (push.Sender, error) {
	if cfg.FirebaseCertificate == "" {
		log.Info("push is off: FIREBASE_CERTIFICATE is not set; pushes are logged")
		return push.LogSender{Log: log}, nil
	}
	return push.NewFCM(ctx, push.FCMConfig{Certificate: cfg.FirebaseCertificate, Endpoint: cfg.FCMEndpoint}, tokens, log.With("component", "push"))
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
