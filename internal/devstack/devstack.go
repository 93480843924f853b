// Package devstack starts private instances of the services the backend
// needs — PostgreSQL, Redis and moto (S3, SQS, SES) — as child processes on
// free loopback ports.
//
// Both the dev runner (`make run`) and the test harness (internal/testenv)
// use it, so a developer and the tests get the same real servers without
// Docker or a system-wide installation being configured. Every server listens
// on 127.0.0.1 only, runs in its own process group and is killed with its
// parent where the OS allows it, so a crashed runner does not leave servers
// behind.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// The Start functions use their context only to bound starting: a server
// runs until Stop, or until the process that started it dies.

// Options tune a server for how its data will be used.
type Options struct {
	// Ephemeral trades durability for speed, for servers whose data is thrown
	// away (tests): PostgreSQL runs without fsync and full-page writes, Redis
	// without snapshots or an append-only file.
	Ephemeral bool
}

// startTimeout bounds how long a server may take to accept connections.
// PostgreSQL's first start includes initdb; moto imports a large Python
// package; both are slow on a busy 2-core CI machine.
const startTimeout = 90 * time.Second

// startAttempts is how many ports a server is tried on: a free port found by
// the kernel can be taken by another process before the server binds it.
const startAttempts = 3

// errPortTaken marks a start that failed only because the chosen port was
// taken in the meantime, so trying another port may succeed.
var errPortTaken = errors.New("port already in use")

// freePort asks the kernel for a currently unused loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startOnFreePort calls start with fresh free ports until it succeeds, fails
// for a reason other than a port race, or runs out of attempts.
func startOnFreePort(ctx context.Context, start func(ctx context.Context, port int) error) error {
	var err error
	for range startAttempts {
		var port int
		port, err = freePort()
		if err != nil {
			return err
		}
		err = start(ctx, port)
		if !errors.Is(err, errPortTaken) {
			return err
		}
	}
	return err
}

// startServerOnFreePort is startOnFreePort for a start that returns the server it started.
func startServerOnFreePort[S any](ctx context.Context, start func(ctx context.Context, port int) (S, error)) (S, error) {
	var s S
	err := startOnFreePort(ctx, func(ctx context.Context, port int) (err error) {
		s, err = start(ctx, port)
		return err
	})
	return s, err
}

// waitReady polls ready until it succeeds, the process exits, or the start
// timeout (or ctx) expires. It returns the last readiness error with the
// tail of the server's output, which usually says what went wrong.
func waitReady(ctx context.Context, p *process, ready func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	// A check in flight when the process exits is abandoned: it may be
	// talking to whoever took the port.
	attemptsCtx, cancelAttempts := context.WithCancel(ctx)
	defer cancelAttempts()
	go func() {
		select {
		case <-p.exited():
			cancelAttempts()
		case <-attemptsCtx.Done():
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		attemptCtx, cancelAttempt := context.WithTimeout(attemptsCtx, 2*time.Second)
		err := ready(attemptCtx)
		cancelAttempt()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited():
			out := p.output()
			if strings.Contains(out, "Address already in use") {
				return fmt.Errorf("%s: %w", p.name, errPortTaken)
			}
			return fmt.Errorf("%s exited before accepting connections (%v); output:\n%s", p.name, p.exitErr(), out)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last error: %v); output:\n%s",
				p.name, ctx.Err(), err, p.output())
		case <-tick.C:
		}
	}
}
