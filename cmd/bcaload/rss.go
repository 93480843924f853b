package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// rssSampler polls a local process's resident set size and keeps the largest value seen.
type rssSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak int64
}

// sampleRSS starts sampling pid every interval; it fails at once when the process cannot be read.
func sampleRSS(pid int, interval time.Duration) (*rssSampler, error) {
	first, err := readRSS(pid)
	if err != nil {
		return nil, err
	}
	s := &rssSampler{done: make(chan struct{}), peak: first}
	s.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-t.C:
				if v, err := readRSS(pid); err == nil {
					s.peak = max(s.peak, v)
				}
			}
		}
	})
	return s, nil
}

// stop ends sampling and returns the peak in bytes.
func (s *rssSampler) stop() int64 {
	close(s.done)
	s.wg.Wait()
	return s.peak
}

// readRSS reads VmRSS of pid from /proc, in bytes.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("-pid %d: %w", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 2 && string(f[1]) == "kB" {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				if err == nil {
					return kb << 10, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("-pid %d: no VmRSS in /proc/%d/status", pid, pid)
}
