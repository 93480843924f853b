package devstack

import (
	"bytes"
	"fmt"
	"log/slog"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a server running as a child in its own process group.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *outputLog
	log  *slog.Logger
	done chan struct{} // closed once the child has exited and been reaped
	err  error         // the child's exit status; read only after done is closed
}

// startProcess starts cmd as a child in a new process group that the kernel
// kills when this process dies (on Linux). The child's stdout and stderr go
// to the debug log and are kept briefly for error messages.
func startProcess(name string, cmd *exec.Cmd, log *slog.Logger) (*process, error) {
	p := &process{
		name: name,
		cmd:  cmd,
		out:  newOutputLog(log.With("service", name)),
		log:  log,
		done: make(chan struct{}),
	}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	// A server's own children (PostgreSQL backends) may hold the output pipe
	// open for a moment after the server exits; do not wait for them forever.
	cmd.WaitDelay = 5 * time.Second
	withChildAttributes(cmd)

	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the *thread* that started the
		// child exits, not the process (go.dev/issue/27505). Pinning this
		// goroutine to its thread until the child has exited keeps that thread
		// alive exactly as long as needed.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, cmd.Path, err)
	}
	log.Debug("started", "service", name, "pid", cmd.Process.Pid, "args", cmd.Args[1:])
	return p, nil
}

// exited is closed once the child has exited.
func (p *process) exited() <-chan struct{} { return p.done }

// exitErr is the child's exit status; call it only after exited is closed.
func (p *process) exitErr() error { return p.err }

// output returns the last lines the child wrote, for error messages.
func (p *process) output() string { return p.out.tail() }

// stop sends sig to the child and waits up to grace for it to exit, then
// kills its whole process group. Stopping an exited child is a no-op.
func (p *process) stop(sig syscall.Signal, grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("signal %s (pid %d): %w", p.name, pid, err)
	}
	select {
	case <-p.done:
		p.log.Debug("stopped", "service", p.name, "pid", pid)
		return nil
	case <-time.After(grace):
	}
	p.log.Warn("did not stop in time; killing its process group", "service", p.name, "pid", pid, "grace", grace)
	// The group id cannot have been reused: the leader is not reaped yet.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("kill %s process group %d: %w", p.name, pid, err)
	}
	<-p.done // bounded: SIGKILL cannot be ignored, and WaitDelay bounds the pipe copy
	return nil
}

// outputLog forwards a child's output to the debug log line by line and
// keeps the last lines, because a server that fails to start usually says
// why on stderr.
type outputLog struct {
	log *slog.Logger

	mu      sync.Mutex
	partial []byte   // an unterminated last line
	lines   []string // ring of the most recent lines
	next    int
}

const outputLines = 40

func newOutputLog(log *slog.Logger) *outputLog {
	return &outputLog{log: log, lines: make([]string, 0, outputLines)}
}

func (o *outputLog) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, b...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		o.addLine(string(bytes.TrimRight(o.partial[:i], "\r")))
		o.partial = o.partial[i+1:]
	}
	// A child that never writes a newline must not grow memory unboundedly.
	if len(o.partial) > 64<<10 {
		o.addLine(string(o.partial))
		o.partial = nil
	}
	return len(b), nil
}

func (o *outputLog) addLine(line string) {
	o.log.Debug(line)
	if len(o.lines) < outputLines {
		o.lines = append(o.lines, line)
		return
	}
	o.lines[o.next] = line
	o.next = (o.next + 1) % outputLines
}

func (o *outputLog) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	ordered := append(append([]string(nil), o.lines[o.next:]...), o.lines[:o.next]...)
	if len(o.partial) > 0 {
		ordered = append(ordered, string(o.partial))
	}
	return strings.Join(ordered, "\n")
}
