package testenv

import (
	"context"
	"slices"
	"sync"

	"github.com/bca-app/backend/internal/outbox"
)

// Bumps is an outbox.Notifier that keeps the sync bumps a service hands over after commit, so a
// test can say whose file a write marked (docs/sync.md §4.2). Safe for concurrent writers.
type Bumps struct {
	mu    sync.Mutex
	bumps []outbox.Bump
}

// Notify keeps b.
func (r *Bumps) Notify(_ context.Context, b []outbox.Bump) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bumps = append(r.bumps, b...)
}

// All returns the bumps kept so far, in the order they were handed over.
func (r *Bumps) All() []outbox.Bump {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bumps)
}

// Take returns the versions bumped since the last Take, by user, and forgets them.
func (r *Bumps) Take() map[int64][]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[int64][]int64{}
	for _, b := range r.bumps {
		m[b.UserID] = append(m[b.UserID], b.Version)
	}
	r.bumps = nil
	return m
}
