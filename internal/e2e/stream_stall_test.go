package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

// TestStalledStreamReaderLosesItsSlot (issue 9): a client that opens a live stream and never
// reads holds its stream slot only until a write to it blocks for CHAT_WRITE_TIMEOUT; then the
// server disconnects it and the slot is free again, although the slot's lease is renewed on its
// own clock. Without the write deadline the blocked write would hold the slot for ever.
func TestStalledStreamReaderLosesItsSlot(t *testing.T) {
	e := New(t, withChatHeartbeat(200*time.Millisecond), func(c *config.Config) {
		c.ChatStreamsPerUser = 1
		c.ChatWriteTimeout = 300 * time.Millisecond
	})
	reader, poster := e.newChatter(t), e.newChatter(t)
	room := e.newRoom(t, poster, map[string]any{"name": "Stall"}, reader).Room

	// The stalled client: a small receive buffer, a request, and no read ever.
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.DialContext(context.Background(), "tcp", strings.TrimPrefix(e.Server.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/chats/stream HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nX-Profile-Id: %d\r\nAccept: text/event-stream\r\n\r\n",
		strings.TrimPrefix(e.Server.URL, "http://"), reader.Token(), reader.Profile)

	// The stalled stream is open once its answer's head arrives (read only that, never its
	// body): from then on it holds the user's one slot. Waiting for it first keeps a probe
	// below from taking the slot ahead of it on a slow machine.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	head, err := http.ReadResponse(bufio.NewReaderSize(conn, 16), nil)
	if err != nil {
		t.Fatalf("the stalled stream's answer: %v", err)
	}
	if head.StatusCode != http.StatusOK {
		t.Fatalf("the stalled stream was refused: %d", head.StatusCode)
	}
	_ = conn.SetReadDeadline(time.Time{})

	// Its slot is taken: a second stream of the same user is refused.
	taken := testenv.WaitFor(5*time.Second, func() bool {
		if s, status, _ := e.tryStream(t, e.Server, reader, ""); s == nil && status == http.StatusTooManyRequests {
			return true
		} else if s != nil {
			s.Close()
		}
		return false
	})
	if !taken {
		t.Fatal("the stalled stream never took its slot")
	}

	// Events pile up in the stalled connection until a write blocks past the deadline; then the
	// slot comes free. Each message is ~12 KB on the wire; a few hundred fill any socket buffer.
	text := strings.Repeat("가나다라", 1000)
	for i := range 600 {
		code, _, b := poster.do(t, e, "POST", "/api/v1/chats/"+strconv.FormatInt(room.Id, 10)+"/events", map[string]any{"message": text})
		Status(t, "post", code, http.StatusCreated, b)
		if i%20 != 19 {
			continue
		}
		if s, status, body := e.tryStream(t, e.Server, reader, ""); s != nil {
			s.Close()
			t.Logf("slot free again after %d messages (~%d KB)", i+1, (i+1)*len(text)/1024)
			// The server closed the stalled connection: reading it now ends (bounded).
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 64<<10)
			for {
				if _, err := conn.Read(buf); err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Fatal("the stalled connection is still open")
					}
					return
				}
			}
		} else if status != http.StatusTooManyRequests {
			t.Fatalf("second stream: %d %s", status, body)
		}
	}
	t.Fatal("600 messages later the stalled reader still holds its stream slot")
}
