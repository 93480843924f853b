// Command bca-worker keeps users' sync files current (docs/sync.md §4). It reads the same
// configuration as bca-api: with AWS_TASK_SQS_URL it consumes the SQS FIFO queue, otherwise it
// claims stale users from PostgreSQL. It serves /metrics, /healthz and /readyz on
// WORKER_HTTP_ADDR (default 127.0.0.1:8081, so it never collides with the API's HTTP_ADDR). It
// does not apply migrations unless MIGRATE_ON_START=true: a rollout runs `bcactl migrate`
// first. SIGINT/SIGTERM stop it gracefully: no new work is taken, messages received meanwhile
// go back to the queue, and in-flight builds finish within SHUTDOWN_TIMEOUT (then they are
// handed back: locks released, messages visible again, PostgreSQL claims released); /readyz
// answers 503 from the signal until the exit.
//
// Started by the AWS Lambda runtime (AWS_LAMBDA_RUNTIME_API is set; the binary is the
// function's bootstrap, see `make dist`), it serves SQS event batches instead of polling, with
// partial batch responses, and runs one pass of the sync sweeper and of the unused uploads'
// sweeper per scheduled event (docs/sync.md §4.6).
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bca-app/backend/internal/app"
	"github.com/bca-app/backend/internal/config"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bca-worker:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.LoadWorker(os.Getenv, ".env")
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := app.NewLogger(cfg.LogLevel).With("process", "bca-worker")
	a, err := app.NewWorker(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		return runLambda(ctx, a)
	}

	ln, err := net.Listen("tcp", cfg.Sync.WorkerHTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on WORKER_HTTP_ADDR %s: %w", cfg.Sync.WorkerHTTPAddr, err)
	}
	srv := app.NewHTTPServer(opsHandler(a))
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("ops server", "err", err)
		}
	}()
	defer func() {
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("sync worker listening for metrics", "addr", ln.Addr().String())
	return a.RunWorker(ctx)
}

// opsHandler serves what an orchestrator and Prometheus need from a worker.
func opsHandler(a *app.App) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{Registry: a.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.Handle("GET /readyz", app.ReadyHandler(a.WorkerReadiness))
	return mux
}

// runLambda serves invocations from the Lambda Runtime API until the runtime stops the process.
// The SQS event source receives and deletes the messages; the worker reports the failed ones.
func runLambda(ctx context.Context, a *app.App) error {
	if a.Queue == nil {
		return errors.New("on Lambda the worker needs AWS_TASK_SQS_URL (the queue of its event source)")
	}
	a.Log.Info("sync worker serving Lambda invocations")
	lambda.StartWithOptions(a.Worker.HandleLambdaEvent, lambda.WithContext(ctx))
	return nil
}
