package httpapi

import "sync"

// Drain is the API's graceful stop as the handlers see it (README: deployment). It has two
// steps: first the process is no longer ready (/readyz answers 503, so a load balancer stops
// sending it new clients while it still serves them), then it is stopping (live chat streams
// end with a `retry:` hint, so their clients reconnect, to another replica). A nil Drain
// never starts.
type Drain struct {
	notReadyOnce, stoppingOnce sync.Once
	notReady, stopping         chan struct{}
}

// NewDrain returns a Drain that has not started.
func NewDrain() *Drain {
	return &Drain{notReady: make(chan struct{}), stopping: make(chan struct{})}
}

// NotReady starts the first step.
func (d *Drain) NotReady() { d.notReadyOnce.Do(func() { close(d.notReady) }) }

// Stop starts the second step (and the first, if it has not started).
func (d *Drain) Stop() {
	d.NotReady()
	d.stoppingOnce.Do(func() { close(d.stopping) })
}

// draining reports whether the first step has started.
func (d *Drain) draining() bool {
	if d == nil {
		return false
	}
	select {
	case <-d.notReady:
		return true
	default:
		return false
	}
}

// stopped is closed once the second step has started (never for a nil Drain).
func (d *Drain) stopped() <-chan struct{} {
	if d == nil {
		return nil
	}
	return d.stopping
}

// drainRetry is the reconnection delay a stream's client is told when the server stops: short,
// since another replica is ready.
const drainRetry = "retry: 1000\n: the server is shutting down; reconnect\n\n"
