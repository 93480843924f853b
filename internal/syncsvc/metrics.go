package syncsvc

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the sync pipeline's Prometheus series, shared by the API (builds on request, the
// producer) and the worker, registered once on the process's registry.
type Metrics struct {
	// Builds counts build attempts by outcome: published (a new file), unchanged (same bytes,
	// version recorded), skipped (nothing owed), superseded (a newer file was published first),
	// busy (another builder held the lock), failed.
	Builds *prometheus.CounterVec
	// BuildSeconds is the time from taking the lock to publishing, by mode (full, incremental).
	BuildSeconds *prometheus.HistogramVec
	// LagSeconds is, per published file, the time since the oldest change it was missing
	// (commit → new ETag).
	LagSeconds prometheus.Histogram
	FileBytes  prometheus.Histogram
	// DeadLetters counts users parked after too many failed builds (and, on SQS, messages
	// dropped as undecodable).
	DeadLetters prometheus.Counter
	// NotifyFailures counts queue messages the API could not send (the sweeper re-sends).
	NotifyFailures prometheus.Counter
	// SendPending is how many bumps wait in the API's background sender; SendDropped counts
	// bumps it dropped because its buffer was full or it was closed (the sweeper re-sends them).
	SendPending prometheus.Gauge
	SendDropped prometheus.Counter
	// Resent counts work the sweeper re-sent or re-queued for lagging users.
	Resent prometheus.Counter
	// GarbageDeleted counts replaced or orphaned objects removed from storage.
	GarbageDeleted prometheus.Counter

	StaleUsers         prometheus.Gauge
	OldestStaleSeconds prometheus.Gauge
	DeadLetteredUsers  prometheus.Gauge
	// QueueMessages is the SQS queue depth by queue (main, dead_letter) and state (visible,
	// in_flight).
	QueueMessages *prometheus.GaugeVec
}

// NewMetrics creates the series and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bca_sync_builds_total", Help: "Sync file build attempts by outcome.",
		}, []string{"outcome"}),
		BuildSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bca_sync_build_duration_seconds", Help: "Time to build and publish one sync file.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"mode"}),
		LagSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bca_sync_lag_seconds", Help: "Time from the oldest change a file lacked to the publication of the file that has it.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}),
		FileBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "bca_sync_file_bytes", Help: "Size of published sync files.",
			Buckets: prometheus.ExponentialBuckets(8<<10, 4, 8),
		}),
		DeadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bca_sync_dead_letters_total", Help: "Users parked after too many failed builds, and undecodable queue messages.",
		}),
		NotifyFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bca_sync_notify_failures_total", Help: "Queue messages the producer could not send.",
		}),
		Resent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bca_sync_sweeper_resent_total", Help: "Lagging users whose work the sweeper sent again.",
		}),
		GarbageDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bca_sync_garbage_deleted_total", Help: "Replaced or orphaned sync file objects deleted.",
		}),
		StaleUsers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bca_sync_stale_users", Help: "Users whose file lags their wanted version.",
		}),
		OldestStaleSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bca_sync_oldest_stale_seconds", Help: "Age of the oldest change not yet in its user's file.",
		}),
		DeadLetteredUsers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bca_sync_dead_lettered_users", Help: "Users parked after too many failed builds.",
		}),
		QueueMessages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bca_sync_queue_messages", Help: "Approximate SQS queue depth.",
		}, []string{"queue", "state"}),
	}
	m.SendPending = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "bca_sync_send_pending", Help: "Sync tasks waiting in the producer's in-process buffer.",
	})
	m.SendDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "bca_sync_send_dropped_total", Help: "Sync tasks the producer dropped (buffer full or closed); the sweeper re-sends them.",
	})
	reg.MustRegister(m.SendPending, m.SendDropped)
	reg.MustRegister(m.Builds, m.BuildSeconds, m.LagSeconds, m.FileBytes, m.DeadLetters, m.NotifyFailures,
		m.Resent, m.GarbageDeleted, m.StaleUsers, m.OldestStaleSeconds, m.DeadLetteredUsers, m.QueueMessages)
	return m
}
