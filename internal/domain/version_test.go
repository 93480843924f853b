package domain

import "testing"

func TestIfMatch(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		header *string
		want   int64
		kind   Kind
	}{
		{nil, 0, KindPreconditionRequired},
		{str("  "), 0, KindPreconditionRequired},
		{str(`"3"`), 3, -1},
		{str(" \"12\" "), 12, -1},
		{str("*"), AnyVersion, -1},
		{str(`W/"3"`), 0, KindPreconditionFailed},
		{str(`3`), 0, KindPreconditionFailed},
		{str(`"-1"`), 0, KindPreconditionFailed},
		{str(`"x"`), 0, KindPreconditionFailed},
		{str(`""`), 0, KindPreconditionFailed},
	}
	for _, c := range cases {
		got, err := IfMatch(c.header)
		if c.kind == -1 {
			if err != nil || got != c.want {
				t.Errorf("%v: got %d, %v; want %d", c.header, got, err, c.want)
			}
			continue
		}
		if !IsKind(err, c.kind) {
			t.Errorf("%v: error %v, want kind %d", c.header, err, c.kind)
		}
	}
	if ETag(7) != `"7"` {
		t.Errorf("ETag(7) = %s", ETag(7))
	}
}
