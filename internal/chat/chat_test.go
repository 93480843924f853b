package chat

import (
	"github.com/bca-app/backend/internal/access"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bca-app/backend/internal/domain"
)

func TestAutoName(t *testing.T) {
	cases := []struct {
		names []string
		want  string
	}{
		{[]string{"Kim"}, "Kim"},
		{[]string{"Kim", "Lee"}, "Kim, Lee"},
		{[]string{"0123456789", "0123456789", "01234"}, "0123456789, 0123456789, 01234"}, // 29 characters
		{[]string{"0123456789", "0123456789", "012345"}, "0123456789, 0123456789, 0123..."},
		{[]string{"김민수김민수김민수김민수김민수", "이영희이영희이영희이영희이영희"}, "김민수김민수김민수김민수김민수, 이영희이영희이영희이영..."},
	}
	for _, c := range cases {
		if got := autoName(c.names); got != c.want {
			t.Errorf("autoName(%q) = %q, want %q", c.names, got, c.want)
		}
	}
}

func TestTruncateKeepsCharacters(t *testing.T) {
	s := strings.Repeat("가", 400) // 1200 bytes
	got, cut := domain.CutBytes(s, pushLimit)
	if !cut || len(got) > pushLimit || !utf8.ValidString(got) || !strings.HasPrefix(s, got) {
		t.Fatalf("truncate: %d bytes, cut %v, valid %v", len(got), cut, utf8.ValidString(got))
	}
	if got, cut := domain.CutBytes("short", pushLimit); got != "short" || cut {
		t.Fatal("short text is kept")
	}
}

func TestParseLastEventID(t *testing.T) {
	got, err := ParseLastEventID("12:41, 15:-1,12:40")
	if err != nil || len(got) != 2 || got[12] != 41 || got[15] != -1 {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"12", "12:x", "0:1", "12:-2", "a:b,c", "12:1;13:2"} {
		if _, err := ParseLastEventID(bad); !domain.IsKind(err, domain.KindInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestStreamBufferIsBounded: the hub's offer never blocks and never grows a stream's queue past
// streamBuffer, however many events arrive while the writer is stuck; an overflow is signalled
// once so the stream catches up from the database (issue 9).
func TestStreamBufferIsBounded(t *testing.T) {
	st := newStream(nil, access.Caller{UserID: 1, ActingProfileID: 1}, "lease")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100 * streamBuffer {
			st.offer(Event{RoomID: 1, Index: int64(i)})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("offer blocked on a stream nobody reads")
	}
	if len(st.in) != streamBuffer || cap(st.in) != streamBuffer {
		t.Fatalf("queue %d of capacity %d, want both %d", len(st.in), cap(st.in), streamBuffer)
	}
	select {
	case <-st.stale:
	default:
		t.Fatal("the overflow was not signalled")
	}
	if first := <-st.in; first.Index != 0 {
		t.Fatalf("the queue keeps the oldest events; first is %d", first.Index)
	}
}
