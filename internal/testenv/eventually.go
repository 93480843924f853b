package testenv

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// pollCap is the longest pause between two looks of WaitFor.
const pollCap = 100 * time.Millisecond

// WaitFor looks at cond until it holds or timeout has passed, and reports whether it held. It
// looks at once, then after pauses that grow from 1 ms to pollCap. Tests wait for an
// asynchronous event with it (or with Eventually) instead of sleeping: it is the one bounded
// polling loop of the tests. cond runs on the caller's goroutine, so it may call t.Fatal.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		t := time.NewTimer(min(pause, left))
		<-t.C
		pause = min(2*pause, pollCap)
	}
}

// Eventually is WaitFor that fails t when cond has not held within timeout; what says what was
// awaited (with optional fmt arguments).
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	if !WaitFor(timeout, cond) {
		t.Fatalf("not within %v: %s", timeout, fmt.Sprintf(what, args...))
	}
}

// Clock is a clock for the services' injectable clocks (their `Now func() time.Time` fields):
// tests pass c.Now and move time forward with Advance instead of sleeping. It runs with the real
// time plus the sum of the advances, so loops bounded by the clock still end. The zero Clock is
// the real time.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the real time plus the clock's advances.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// AtOnce runs f(0) … f(n-1), each on its own goroutine, released together once all are started,
// and returns when all have returned: the storm of identical or conflicting calls that a race
// test needs.
func AtOnce(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}
