// Package vcard is the one vCard 4.0 (RFC 6350) encoder of the service: the profile export
// (exportProfileVCard) and the vCard of a shared card (/c/{token}.vcf) are both built here, from
// the labelled contact data of docs/product.md §4.
package vcard

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Card is what one vCard says. Empty fields are left out.
type Card struct {
	Name     string // FN (and N, as the family name)
	Org      string
	Title    string
	Note     string
	PhotoURL string
	URL      string
	Source   string // where this vCard can be fetched again
	Contacts []Contact
	Rev      time.Time
}

// Contact is one TEL, EMAIL, URL or ADR line.
type Contact struct {
	Property string // TEL, EMAIL, URL or ADR
	Label    string // the TYPE parameter, as the user labelled the entry
	Value    string
	Pref     int // 1 is the most preferred (lowest index)
}

// Encode renders the card as vCard 4.0 text: CRLF line ends, RFC 6350 §3.4 escaping and lines
// folded at 75 octets (§3.2) without splitting a UTF-8 character.
func Encode(c Card) string {
	var b strings.Builder
	line := func(name, value string) {
		writeFolded(&b, name+":"+value)
	}
	line("BEGIN", "VCARD")
	line("VERSION", "4.0")
	line("FN", escape(c.Name))
	line("N", escape(c.Name)+";;;;")
	if c.Org != "" {
		line("ORG", escape(c.Org))
	}
	if c.Title != "" {
		line("TITLE", escape(c.Title))
	}
	if c.Note != "" {
		line("NOTE", escape(c.Note))
	}
	if c.PhotoURL != "" {
		line("PHOTO", c.PhotoURL)
	}
	for _, ct := range c.Contacts {
		value := escape(ct.Value)
		if ct.Property == "ADR" {
			value = ";;" + value + ";;;;" // the whole address as the street component
		}
		line(ct.Property+";TYPE="+paramValue(ct.Label)+";PREF="+strconv.Itoa(ct.Pref), value)
	}
	if c.URL != "" {
		line("URL", c.URL)
	}
	if c.Source != "" {
		line("SOURCE", c.Source)
	}
	if !c.Rev.IsZero() {
		line("REV", c.Rev.UTC().Format("20060102T150405Z"))
	}
	line("END", "VCARD")
	return b.String()
}

func writeFolded(b *strings.Builder, l string) {
	const max = 75
	first := true
	for len(l) > 0 {
		room := max
		if !first {
			room = max - 1 // the leading space of a continuation line counts
			b.WriteByte(' ')
		}
		cut := len(l)
		if cut > room {
			cut = room
			for cut > 0 && !utf8.RuneStart(l[cut]) {
				cut--
			}
		}
		b.WriteString(l[:cut])
		b.WriteString("\r\n")
		l = l[cut:]
		first = false
	}
}

// property maps the known data fields to vCard properties; other fields have none.
var property = map[string]string{"email": "EMAIL", "phone": "TEL", "sns": "URL", "address": "ADR"}

// Contacts are the known contact fields (email, phone, sns, address) of labelled data, ordered
// by property, then preference, then label.
func Contacts(data []byte) []Contact {
	var out []Contact
	for _, f := range Fields(data) {
		prop, ok := property[f.Key]
		if !ok {
			continue
		}
		out = append(out, Contact{Property: prop, Label: f.Label, Value: f.Value, Pref: min(f.EntryIndex+1, 100)})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Property != b.Property {
			return a.Property < b.Property
		}
		if a.Pref != b.Pref {
			return a.Pref < b.Pref
		}
		return a.Label < b.Label
	})
	return out
}

// Field is one value of labelled data as a person reads it.
type Field struct {
	Key        string // the data field, e.g. "phone"
	Label      string // the entry's label, e.g. "mobile"; the key when the field has no entries
	Value      string
	Index      int // the field's index
	EntryIndex int // the entry's index within the field
}

type labelled struct {
	Index int             `json:"index"`
	Value json.RawMessage `json:"value"`
}

// Fields reads a data object in the shape of docs/product.md §4 —
// {"phone": {"index": 0, "value": {"mobile": {"index": 0, "value": "+82 …"}}}} — and returns
// every string value in index order (fields by index, then entries by index, ties by name).
// Plain members ({"title": "Engineer"}) and {"index", "value": "text"} members are read too,
// as one value labelled with their key; anything else (numbers, nested objects) is skipped.
func Fields(data []byte) []Field {
	var members map[string]json.RawMessage
	if json.Unmarshal(data, &members) != nil {
		return nil
	}
	var out []Field
	for key, raw := range members {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out = append(out, Field{Key: key, Label: key, Value: s, Index: 1 << 30})
			continue
		}
		var f labelled
		if json.Unmarshal(raw, &f) != nil || f.Value == nil {
			continue
		}
		if json.Unmarshal(f.Value, &s) == nil {
			out = append(out, Field{Key: key, Label: key, Value: s, Index: f.Index})
			continue
		}
		var entries map[string]labelled
		if json.Unmarshal(f.Value, &entries) != nil {
			continue
		}
		for label, e := range entries {
			if json.Unmarshal(e.Value, &s) != nil {
				continue
			}
			out = append(out, Field{Key: key, Label: label, Value: s, Index: f.Index, EntryIndex: e.Index})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.EntryIndex != b.EntryIndex {
			return a.EntryIndex < b.EntryIndex
		}
		return a.Label < b.Label
	})
	return out
}

// escape applies RFC 6350 §3.4 text escaping.
func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, ",", `\,`, ";", `\;`, "\r\n", `\n`, "\n", `\n`, "\r", `\n`).Replace(s)
}

// paramValue quotes a parameter value when it contains characters that need it.
func paramValue(s string) string {
	s = strings.NewReplacer(`"`, "'", "\r", " ", "\n", " ").Replace(s)
	if strings.ContainsAny(s, ",;:") {
		return `"` + s + `"`
	}
	return s
}
