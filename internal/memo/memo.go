// Package memo keeps values a process has already worked out, by a key that names them for good
// (a drawn QR code by its ETag, a profile's encoded answer by its version): a lookup replaces
// the work. A Map is bounded; when full, an arbitrary entry goes to make room, which for keys
// that never go stale costs at most the work again.
package memo

import "sync"

// Map is a bounded map, safe for concurrent use. The zero value is not usable; see New.
type Map[K comparable, V any] struct {
	mu      sync.Mutex
	entries map[K]V
	max     int
}

// New returns a Map of at most n entries (at least 1).
func New[K comparable, V any](n int) *Map[K, V] {
	limit := max(n, 1)
	return &Map[K, V]{entries: make(map[K]V, min(limit, 1024)), max: limit}
}

// Get returns the value kept for key, if any.
func (m *Map[K, V]) Get(key K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.entries[key]
	return v, ok
}

// Put keeps v for key; when the map is full and key is new, an arbitrary entry goes first.
func (m *Map[K, V]) Put(key K, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[key]; !ok && len(m.entries) >= m.max {
		for k := range m.entries {
			delete(m.entries, k)
			break
		}
	}
	m.entries[key] = v
}

// Len is how many entries the map keeps.
func (m *Map[K, V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}
