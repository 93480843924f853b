package domain

import (
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	deep := func(n int) string { return strings.Repeat(`[`, n) + strings.Repeat(`]`, n) }
	wide := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"k` + strings.Repeat("x", i) + `":1`)
		}
		return b.String() + "}"
	}
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"a":{"b":[1,{"c":"d"}]},"e":null}`, true},
		{`  {}  `, true},
		{deep(MaxJSONDepth), true},
		{deep(MaxJSONDepth + 1), false},
		{wide(MaxJSONKeys), true},
		{wide(MaxJSONKeys + 1), false},
		{`{"a":1,"a":2}`, false},
		{`{"a":{"b":1},"c":{"b":2}}`, true}, // the same key in two objects
		{`{"a":1} {}`, false},
		{`{"a":1}x`, false},
		{`{"a":"\u0000"}`, false},
		{`{"\u0000":1}`, false},
		{"{\"a\":\"\xff\"}", false},
		{``, false},
		{`{"a":`, false},
	} {
		if err := CheckJSON("body", []byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("CheckJSON(%.40q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"  Jane\u0301 ", "Jané", true},
		{"a\x07b", "", false},
		{"a\x00b", "", false},
		{"\u200b\u200d ", "", false},
		{"\u3164", "", false},
		{"\xff", "", false},
		{strings.Repeat("é", 101), "", false},
		{"👩‍💻 Dev", "👩‍💻 Dev", true}, // a joiner inside an emoji is fine
	} {
		got, err := Name("name", tc.in, MaxNameLength)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Name(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if _, err := Text("message", "\u200b\u2063\u00a0"); err == nil {
		t.Error("an invisible message is refused")
	}
	if _, err := JSONObject("data", []byte(`[1]`)); err == nil {
		t.Error("an array is not an object")
	}
}
