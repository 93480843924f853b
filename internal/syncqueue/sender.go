package syncqueue

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/syncsvc"
)

// SenderOptions tune the background sender; DefaultSenderOptions are the production values.
type SenderOptions struct {
	// Buffer is how many bumps may wait in memory (SYNC_SEND_BUFFER). When it is full, Notify
	// drops the bump: the outbox row (wanted_version > built_version) stays, and the sweeper
	// sends the work again after SYNC_LAG_THRESHOLD.
	Buffer int
	// Concurrency is how many SendMessageBatch calls may be in flight (SYNC_SEND_CONCURRENCY).
	Concurrency int
	// Timeout bounds one SendMessageBatch call (SYNC_SEND_TIMEOUT).
	Timeout time.Duration
	// Attempts is how often a batch is tried before it is left to the sweeper; the waits
	// between attempts double from BaseBackoff up to MaxBackoff, with jitter.
	Attempts                int
	BaseBackoff, MaxBackoff time.Duration
}

// DefaultSenderOptions are the production options.
func DefaultSenderOptions() SenderOptions {
	return SenderOptions{Buffer: 10000, Concurrency: 4, Timeout: 5 * time.Second, Attempts: 5,
		BaseBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second}
}

// Sender is the API's producer (an outbox.Notifier): Notify only puts the bumps into a bounded
// buffer and returns, so a request never waits for SQS (docs/sync.md §4.2). Background
// goroutines send them in batches of up to 10 (SendMessageBatch) and retry failed entries with
// back-off. A bump that is dropped (buffer full, retries exhausted, process killed) is not lost:
// its user stays stale in sync_states, and the sweeper re-sends the work.
type Sender struct {
	q       *SQS
	opts    SenderOptions
	metrics *syncsvc.Metrics
	log     *slog.Logger

	ch       chan outbox.Bump
	closeMu  sync.RWMutex // Notify holds it for reading while it may write to ch
	closed   bool
	hardStop context.CancelFunc
	hard     context.Context
	wg       sync.WaitGroup
}

// SenderDeps are what a Sender works with.
type SenderDeps struct {
	Queue   *SQS             // required
	Options SenderOptions    // DefaultSenderOptions with the configured settings
	Metrics *syncsvc.Metrics // required
	Log     *slog.Logger     // required
}

// NewSender starts a sender in front of d.Queue; Close stops it. It refuses missing
// dependencies; options left at zero take DefaultSenderOptions' values.
func NewSender(d SenderDeps) (*Sender, error) {
	if err := domain.RequireDeps("sqs sender", map[string]any{"Queue": d.Queue, "Metrics": d.Metrics, "Log": d.Log}); err != nil {
		return nil, err
	}
	o, def := d.Options, DefaultSenderOptions()
	orDefault(&o.Buffer, def.Buffer)
	orDefault(&o.Concurrency, def.Concurrency)
	orDefault(&o.Attempts, def.Attempts)
	orDefault(&o.Timeout, def.Timeout)
	orDefault(&o.BaseBackoff, def.BaseBackoff)
	orDefault(&o.MaxBackoff, def.MaxBackoff)
	s := &Sender{q: d.Queue, opts: o, metrics: d.Metrics, log: d.Log, ch: make(chan outbox.Bump, o.Buffer)}
	s.hard, s.hardStop = context.WithCancel(context.Background())
	for range o.Concurrency {
		s.wg.Go(s.loop)
	}
	return s, nil
}

// orDefault sets *v to def when it is not positive.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Notify queues the bumps without waiting; covered bumps need no message (tasksOf). Bumps that
// do not fit are counted in bca_sync_send_dropped_total and left to the sweeper.
func (s *Sender) Notify(ctx context.Context, bumps []outbox.Bump) {
	bumps = tasksOf(bumps)
	if len(bumps) == 0 {
		return
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	dropped := 0
	for _, b := range bumps {
		if s.closed {
			dropped++
			continue
		}
		select {
		case s.ch <- b:
		default:
			dropped++
		}
	}
	s.metrics.SendPending.Set(float64(len(s.ch)))
	if dropped > 0 {
		s.metrics.SendDropped.Add(float64(dropped))
		s.log.WarnContext(ctx, "sync task sender full or closed; the sweeper will re-send", "users", dropped)
	}
}

// loop sends what is buffered: one bump, plus whatever else is waiting, up to 10.
func (s *Sender) loop() {
	for s.hard.Err() == nil { // after a hard stop the rest is left to the sweeper
		var first outbox.Bump
		select {
		case b, ok := <-s.ch:
			if !ok {
				return
			}
			first = b
		case <-s.hard.Done():
			return
		}
		bumps := []outbox.Bump{first}
	fill:
		for len(bumps) < 10 {
			select {
			case b, ok := <-s.ch:
				if !ok {
					break fill
				}
				bumps = append(bumps, b)
			default:
				break fill
			}
		}
		s.metrics.SendPending.Set(float64(len(s.ch)))
		s.sendWithRetry(bumps)
	}
}

// sendWithRetry tries the batch up to Attempts times, each time only the entries that failed.
func (s *Sender) sendWithRetry(bumps []outbox.Bump) {
	wait := s.opts.BaseBackoff
	var err error
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(s.hard, s.opts.Timeout)
		bumps, err = s.q.send(ctx, bumps, "")
		cancel()
		if err == nil {
			return
		}
		if attempt >= s.opts.Attempts || s.hard.Err() != nil {
			break
		}
		jittered := wait/2 + rand.N(wait/2+1)
		select {
		case <-time.After(jittered):
		case <-s.hard.Done():
		}
		wait = min(wait*2, s.opts.MaxBackoff)
	}
	s.metrics.NotifyFailures.Add(float64(len(bumps)))
	s.log.Warn("send sync tasks failed; the sweeper will re-send them", "users", len(bumps), "err", err)
}

// Close stops taking bumps and sends what is buffered until ctx ends; what is left then is
// abandoned to the sweeper and counted as dropped.
func (s *Sender) Close(ctx context.Context) error {
	s.closeMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
	s.closeMu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.hardStop()
		return nil
	case <-ctx.Done():
		s.hardStop()
		<-done
		left := 0
		for range s.ch { // closed above: this ends
			left++
		}
		s.metrics.SendPending.Set(0)
		s.metrics.SendDropped.Add(float64(left))
		return fmt.Errorf("sync task sender: closed before the buffer was sent (%d tasks left); the sweeper re-sends them", left)
	}
}
