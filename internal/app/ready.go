package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"
)

// Check is the readiness of one dependency; Err is nil when it is usable.
type Check struct {
	Name string
	Err  error
}

// readyTimeout bounds each readiness check.
const readyTimeout = 2 * time.Second

// errWorkerDraining is the "drain" check's failure while the worker stops.
var errWorkerDraining = errors.New("draining: the worker takes no new work and stops")

// WorkerReadiness checks what the sync worker needs, concurrently and each within a deadline:
// PostgreSQL, Redis, the task queue with its dead-letter queue (with AWS_TASK_SQS_URL), and the
// bucket or directory of the object store. From the moment RunWorker starts draining (SIGTERM)
// the "drain" check fails, so the worker is not ready until it exits.
func (a *App) WorkerReadiness(ctx context.Context) []Check {
	if a.workerDraining.Load() {
		return []Check{{Name: "drain", Err: errWorkerDraining}}
	}
	probes := []struct {
		name  string
		check func(context.Context) error
	}{
		{"postgres", a.Pool.Ping},
		{"redis", func(ctx context.Context) error { return a.Redis.Ping(ctx).Err() }},
	}
	if a.Queue != nil {
		probes = append(probes, struct {
			name  string
			check func(context.Context) error
		}{"queue", a.Queue.Check})
	}
	if c, ok := a.Store.(interface{ Check(context.Context) error }); ok {
		probes = append(probes, struct {
			name  string
			check func(context.Context) error
		}{"storage", c.Check})
	}
	checks := make([]Check, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, readyTimeout)
			defer cancel()
			checks[i] = Check{Name: p.name, Err: p.check(ctx)}
		})
	}
	wg.Wait()
	return checks
}

// ReadyHandler answers /readyz from the checks: 200 {"status":"ok","checks":{…}} when all pass,
// otherwise 503 with "failed" naming each failed dependency and "checks" giving its error.
func ReadyHandler(checks func(context.Context) []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body := struct {
			Status string            `json:"status"`
			Failed []string          `json:"failed,omitempty"`
			Checks map[string]string `json:"checks"`
		}{Status: "ok", Checks: map[string]string{}}
		for _, c := range checks(r.Context()) {
			if c.Err != nil {
				body.Failed = append(body.Failed, c.Name)
				body.Checks[c.Name] = c.Err.Error()
			} else {
				body.Checks[c.Name] = "ok"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if len(body.Failed) > 0 {
			body.Status = "unavailable"
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(body)
	}
}
