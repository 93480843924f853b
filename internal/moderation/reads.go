package moderation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/syncsvc"
	"github.com/bca-app/backend/internal/worker"
)

// ReportFilter narrows the moderation queue; nil fields match everything.
type ReportFilter struct {
	Status, Kind *string
}

// ListReports pages through the queue, newest first.
func (s *Service) ListReports(ctx context.Context, f ReportFilter, beforeID int64, limit int) ([]db.Report, error) {
	rows, err := db.New(s.Pool).ListReportsForAdmin(ctx, db.ListReportsForAdminParams{Status: f.Status, Kind: f.Kind, BeforeID: beforeID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	return rows, nil
}

// GetReport reads one report with its evidence.
func (s *Service) GetReport(ctx context.Context, id int64) (db.Report, error) {
	r, err := db.New(s.Pool).GetReport(ctx, id)
	if err != nil {
		return db.Report{}, notFound(err, "The report")
	}
	return r, nil
}

// searchHigh is past every key that starts with a prefix in byte order: U+10FFFF is the
// largest code point, so prefix+U+10FFFF sorts after prefix+anything a key can hold.
const searchHigh = "\U0010FFFF"

// SearchUsers finds users whose login id, nickname or email starts with q (case-insensitive:
// q is folded the way the keys are), newest first.
func (s *Service) SearchUsers(ctx context.Context, q string, beforeID int64, limit int) ([]db.User, error) {
	key := domain.Key(q)
	if key == "" {
		return nil, domain.Invalid("q", "must not be blank")
	}
	rows, err := db.New(s.Pool).SearchUsers(ctx, db.SearchUsersParams{Lo: key, Hi: key + searchHigh, BeforeID: beforeID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("search users: %w", err)
	}
	return rows, nil
}

// GetUser reads one user.
func (s *Service) GetUser(ctx context.Context, id int64) (db.User, error) {
	u, err := db.New(s.Pool).GetUserByID(ctx, id)
	if err != nil {
		return db.User{}, notFound(err, "The user")
	}
	return u, nil
}

// ListUserProfiles pages through all of a user's profiles, locked and deleted ones included.
func (s *Service) ListUserProfiles(ctx context.Context, userID, afterID int64, limit int) ([]db.Profile, error) {
	if _, err := s.GetUser(ctx, userID); err != nil {
		return nil, err
	}
	rows, err := db.New(s.Pool).ListProfilesOfUserForAdmin(ctx, db.ListProfilesOfUserForAdminParams{UserID: userID, AfterID: afterID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list profiles: %w", err)
	}
	return rows, nil
}

// AuditFilter narrows the audit log; nil fields match everything.
type AuditFilter struct {
	ActorUserID *int64
	Action      *string
	TargetKind  *string
	TargetID    *int64
}

// ListAudit pages through the audit log, newest first.
func (s *Service) ListAudit(ctx context.Context, f AuditFilter, beforeID int64, limit int) ([]db.AuditLog, error) {
	rows, err := db.New(s.Pool).ListAudit(ctx, db.ListAuditParams{ActorUserID: f.ActorUserID, Action: f.Action, TargetKind: f.TargetKind,
		TargetID: f.TargetID, BeforeID: beforeID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	return rows, nil
}

// Figures are the sync pipeline's numbers for the admin (and /metrics).
type Figures struct {
	OutboxDepth, QueueDepth int64
	OldestPendingSeconds    float64
	DeadLettered            int64
	Window                  time.Duration
	Lag                     syncsvc.LagStats
	Workers                 []worker.Heartbeat
}

// PipelineFigures reads the backlog from PostgreSQL and the lag samples and worker heartbeats
// from Redis; window is the span of the lag percentiles.
func (s *Service) PipelineFigures(ctx context.Context, window time.Duration) (Figures, error) {
	if s.Redis == nil {
		return Figures{}, errors.New("pipeline figures: no Redis (lag samples and worker heartbeats live there)")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	f := Figures{Window: window}
	b, err := db.New(s.Pool).PipelineBacklog(ctx)
	if err != nil {
		return f, fmt.Errorf("pipeline backlog: %w", err)
	}
	f.OutboxDepth, f.QueueDepth, f.OldestPendingSeconds, f.DeadLettered = b.OutboxDepth, b.QueueDepth, b.OldestPendingSeconds, b.DeadLettered
	if f.Lag, err = syncsvc.LagPercentiles(ctx, s.Redis, s.KeyPrefix, window); err != nil {
		return f, err
	}
	if f.Workers, err = worker.Heartbeats(ctx, s.Redis, s.KeyPrefix); err != nil {
		return f, err
	}
	return f, nil
}

// Collector puts the pipeline figures on /metrics, read at scrape time (the lag percentiles
// over the last five minutes).
type Collector struct {
	s                                             *Service
	outbox, queue, oldest, dead, lag, workers, hb *prometheus.Desc
}

// Collector returns a collector of the service's figures.
func (s *Service) Collector() *Collector {
	return &Collector{s: s,
		outbox:  prometheus.NewDesc("bca_pipeline_outbox_depth", "Users whose sync file lags what they are owed.", nil, nil),
		queue:   prometheus.NewDesc("bca_pipeline_queue_depth", "Lagging users a worker may take now.", nil, nil),
		oldest:  prometheus.NewDesc("bca_pipeline_oldest_pending_seconds", "Age of the oldest change not yet in its file.", nil, nil),
		dead:    prometheus.NewDesc("bca_pipeline_dead_lettered_users", "Users parked after too many failed builds.", nil, nil),
		lag:     prometheus.NewDesc("bca_pipeline_sync_lag_seconds", "Sync lag percentiles of the files published in the last 5 minutes.", []string{"quantile"}, nil),
		workers: prometheus.NewDesc("bca_pipeline_workers", "Sync workers that reported in the last ten minutes.", nil, nil),
		hb:      prometheus.NewDesc("bca_pipeline_worker_heartbeat_age_seconds", "Seconds since each sync worker's last heartbeat.", []string{"worker"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.outbox, c.queue, c.oldest, c.dead, c.lag, c.workers, c.hb} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; a failed read leaves the figures out of the scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	f, err := c.s.PipelineFigures(context.Background(), 5*time.Minute)
	if err != nil {
		c.s.Log.Warn("pipeline figures for /metrics", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.outbox, prometheus.GaugeValue, float64(f.OutboxDepth))
	ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(f.QueueDepth))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, f.OldestPendingSeconds)
	ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(f.DeadLettered))
	if !math.IsNaN(f.Lag.P50) {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, f.Lag.P50, "0.5")
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, f.Lag.P99, "0.99")
	}
	ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(len(f.Workers)))
	for _, w := range f.Workers {
		ch <- prometheus.MustNewConstMetric(c.hb, prometheus.GaugeValue, time.Since(w.LastSeen).Seconds(), w.ID)
	}
}
