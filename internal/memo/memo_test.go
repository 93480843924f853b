package memo_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/bca-app/backend/internal/memo"
)

// TestAMapKeepsWhatWasPutUpToItsBound: values come back by key; a full map lets one entry go
// for each new key (never for a key it has), so it never holds more than its bound.
func TestAMapKeepsWhatWasPutUpToItsBound(t *testing.T) {
	m := memo.New[string, int](3)
	for i := range 3 {
		m.Put(strconv.Itoa(i), i)
	}
	for i := range 3 {
		if v, ok := m.Get(strconv.Itoa(i)); !ok || v != i {
			t.Fatalf("Get(%d) = %d, %v; want %d, true", i, v, ok, i)
		}
	}
	m.Put("1", 10) // a key it has: replaced, nothing goes
	if v, _ := m.Get("1"); v != 10 || m.Len() != 3 {
		t.Fatalf("after replacing a key: Get = %d, Len = %d; want 10, 3", v, m.Len())
	}
	if v, _ := m.Get("0"); v != 0 {
		t.Fatal("replacing a key let another go")
	}
	m.Put("new", 4)
	if m.Len() != 3 {
		t.Fatalf("Len after a new key on a full map = %d; want 3", m.Len())
	}
	if v, ok := m.Get("new"); !ok || v != 4 {
		t.Fatalf("the new key: %d, %v", v, ok)
	}
	if _, ok := m.Get("missing"); ok {
		t.Fatal("Get of a key never put found something")
	}
	if one := memo.New[int, int](0); func() bool { one.Put(1, 1); one.Put(2, 2); return one.Len() != 1 }() {
		t.Fatal("a bound below 1 is 1")
	}
}

// TestAMapUnderConcurrentUse: 16 goroutines putting and getting distinct and shared keys stay
// within the bound and read back only values that were put for the key (run with -race).
func TestAMapUnderConcurrentUse(t *testing.T) {
	m := memo.New[int, int](64)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 2000 {
				k := (g*2000 + i) % 200
				m.Put(k, k*7)
				if v, ok := m.Get(k); ok && v != k*7 {
					t.Errorf("Get(%d) = %d; want %d", k, v, k*7)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := m.Len(); n > 64 || n == 0 {
		t.Fatalf("Len = %d; want 1..64", n)
	}
}
