package testenv

import (
	"net"
	"sync"
	"testing"
)

// HoldProxy is a loopback TCP proxy in front of a server (PostgreSQL, say) that can stop
// forwarding: while held, connections stay open and bytes are taken in but not passed on in
// either direction, as with a server that has hung. Everything stops when the test ends.
type HoldProxy struct {
	Addr string // host:port to connect to instead of the server's

	mu    sync.Mutex
	held  bool
	thaw  chan struct{} // closed on Release
	conns []net.Conn
}

// NewHoldProxy starts a proxy to target (host:port) on a free loopback port.
func NewHoldProxy(t testing.TB, target string) *HoldProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &HoldProxy{Addr: ln.Addr().String(), thaw: make(chan struct{})}
	close(p.thaw)
	done := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go p.pipe(s, c, done)
			go p.pipe(c, s, done)
		}
	}()
	t.Cleanup(func() {
		close(done)
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

// pipe copies from src to dst, waiting before each write while the proxy is held. When either
// side ends, both connections close, so the other side sees the end too.
func (p *HoldProxy) pipe(dst, src net.Conn, done <-chan struct{}) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			thaw := p.thaw
			p.mu.Unlock()
			select {
			case <-thaw:
			case <-done:
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Hold stops forwarding until Release.
func (p *HoldProxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.held {
		p.held, p.thaw = true, make(chan struct{})
	}
}

// Release forwards again, what was taken in while held first.
func (p *HoldProxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		p.held = false
		close(p.thaw)
	}
}
