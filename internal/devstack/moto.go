package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Moto is a moto server: in-memory S3, SQS and SES (and more) speaking the
// real AWS protocols, for aws-sdk-go-v2 clients pointed at URL.
type Moto struct {
	url  string
	proc *process
}

// StartMoto starts moto_server on a free loopback port and returns once it
// answers HTTP. moto keeps everything in memory; Stop loses it.
func StartMoto(ctx context.Context, log *slog.Logger) (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("moto_server not found on PATH (python3 -m pip install 'moto[server]'): %w", err)
	}
	m := &Moto{}
	err = startOnFreePort(ctx, func(ctx context.Context, port int) error {
		return m.start(ctx, bin, port, log)
	})
	if err != nil {
		return nil, fmt.Errorf("start moto: %w", err)
	}
	log.Info("moto ready", "url", m.url)
	return m, nil
}

// URL is the endpoint to give AWS clients (AWS_ENDPOINT_URL).
func (m *Moto) URL() string { return m.url }

// Stop shuts the server down, discarding everything it held.
func (m *Moto) Stop() error {
	return m.proc.stop(syscall.SIGTERM, 10*time.Second)
}

func (m *Moto) start(ctx context.Context, bin string, port int, log *slog.Logger) error {
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	proc, err := startProcess("moto", cmd, log)
	if err != nil {
		return err
	}
	m.proc, m.url = proc, "http://127.0.0.1:"+strconv.Itoa(port)
	if err := waitReady(ctx, proc, m.ping); err != nil {
		_ = proc.stop(syscall.SIGKILL, time.Second)
		return err
	}
	return nil
}

// ping succeeds once moto answers its own API; any HTTP answer below 500
// means the server is up.
func (m *Moto) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url+"/moto-api/data.json", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("moto answered %s", resp.Status)
	}
	return nil
}
