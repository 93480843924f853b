package chat

import (
	"strings"
	"testing"
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
	got, cut := truncate(s, pushLimit)
	if !cut || len(got) > pushLimit || !utf8.ValidString(got) || !strings.HasPrefix(s, got) {
		t.Fatalf("truncate: %d bytes, cut %v, valid %v", len(got), cut, utf8.ValidString(got))
	}
	if got, cut := truncate("short", pushLimit); got != "short" || cut {
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
