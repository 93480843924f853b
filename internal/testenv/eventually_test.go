package testenv

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitForSeesTheEventAndGivesUp(t *testing.T) {
	var flag atomic.Bool
	go func() {
		<-time.After(30 * time.Millisecond) // the asynchronous event the poll waits for
		flag.Store(true)
	}()
	if !WaitFor(5*time.Second, flag.Load) {
		t.Fatal("WaitFor missed a condition that became true")
	}
	looks := 0
	start := time.Now()
	if WaitFor(50*time.Millisecond, func() bool { looks++; return false }) {
		t.Fatal("WaitFor reported a condition that never held")
	}
	if d := time.Since(start); d < 50*time.Millisecond || looks < 2 {
		t.Fatalf("WaitFor gave up after %v and %d looks; want the whole timeout and several looks", d, looks)
	}
}

func TestClockAdvances(t *testing.T) {
	var c Clock
	before := time.Now()
	c.Advance(time.Hour)
	if got := c.Now(); got.Sub(before) < time.Hour || got.Sub(before) > time.Hour+time.Minute {
		t.Fatalf("an hour ahead of %v: %v", before, got)
	}
	if a, b := c.Now(), c.Now(); b.Before(a) {
		t.Fatalf("the clock went back: %v then %v", a, b)
	}
}
