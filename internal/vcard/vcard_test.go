package vcard

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestEncodeEscapesAndFolds(t *testing.T) {
	long := strings.Repeat("명함", 40) // 240 octets of 3-byte characters
	out := Encode(Card{Name: "Kim, Jane; CEO\\x", Note: "line one\nline two " + long, Rev: time.Date(2026, 11, 29, 1, 2, 3, 0, time.UTC),
		Contacts: []Contact{{Property: "TEL", Label: "mobile, main", Value: "+82 10", Pref: 1}}})
	if !strings.HasPrefix(out, "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Kim\\, Jane\\; CEO\\\\x\r\n") || !strings.HasSuffix(out, "REV:20261129T010203Z\r\nEND:VCARD\r\n") {
		t.Fatalf("escaping or order:\n%s", out)
	}
	if !strings.Contains(out, "TEL;TYPE=\"mobile, main\";PREF=1:+82 10\r\n") {
		t.Fatalf("parameter quoting:\n%s", out)
	}
	var unfolded strings.Builder
	for i, line := range strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n") {
		if len(line) > 75 || !utf8.ValidString(line) {
			t.Fatalf("line %d: %d octets, valid UTF-8 %v", i, len(line), utf8.ValidString(line))
		}
		if rest, ok := strings.CutPrefix(line, " "); ok {
			unfolded.WriteString(rest)
		} else {
			unfolded.WriteString("\n" + line)
		}
	}
	if !strings.Contains(unfolded.String(), "\nNOTE:line one\\nline two "+long+"\n") {
		t.Fatalf("unfolding does not give the note back:\n%s", unfolded.String())
	}
}

func TestFieldsInIndexOrder(t *testing.T) {
	data := []byte(`{"sns":{"index":2,"value":{"x":{"index":0,"value":"https://x.test/j"}}},
		"phone":{"index":0,"value":{"home":{"index":1,"value":"2"},"mobile":{"index":0,"value":"1"}}},
		"title":"CEO","n":3,"email":{"index":1,"value":"j@x.test"}}`)
	var got []string
	for _, f := range Fields(data) {
		got = append(got, f.Key+"/"+f.Label+"="+f.Value)
	}
	want := "phone/mobile=1 phone/home=2 email/email=j@x.test sns/x=https://x.test/j title/title=CEO"
	if strings.Join(got, " ") != want {
		t.Fatalf("fields %q, want %q", strings.Join(got, " "), want)
	}
	if c := Contacts(data); len(c) != 4 || c[0].Property != "EMAIL" || c[1].Property != "TEL" || c[1].Pref != 1 || c[2].Pref != 2 {
		t.Fatalf("contacts %+v", c)
	}
}
