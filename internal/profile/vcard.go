package profile

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/files"
)

// VCard renders what the viewer may see of a profile as a vCard 4.0 (RFC 6350): the name always,
// and for a fully visible profile the team, description, photo and every contact entry.
func VCard(v View, baseURL string) string {
	p := v.Profile
	var b strings.Builder
	line := func(name, value string) {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	line("BEGIN", "VCARD")
	line("VERSION", "4.0")
	line("FN", escape(p.Name))
	line("N", escape(p.Name)+";;;;")
	if p.ImageFileKey != nil {
		line("PHOTO", baseURL+files.URL(*p.ImageFileKey))
	}
	if v.Visibility == access.Full {
		if p.TeamName != nil {
			line("ORG", escape(*p.TeamName))
		}
		if p.Description != nil {
			line("NOTE", escape(*p.Description))
		}
		for _, c := range contactLines(p.Data) {
			line(c.property+";TYPE="+paramValue(c.label)+";PREF="+strconv.Itoa(c.pref), c.value)
		}
	}
	line("REV", p.ModifiedAt.UTC().Format("20060102T150405Z"))
	line("END", "VCARD")
	return b.String()
}

type contact struct {
	property, label, value string
	pref                   int
}

// vcardProperty maps the known data fields to vCard properties; other fields have none.
var vcardProperty = map[string]string{"email": "EMAIL", "phone": "TEL", "sns": "URL", "address": "ADR"}

func contactLines(data []byte) []contact {
	var fields map[string]labelled
	if json.Unmarshal(data, &fields) != nil {
		return nil
	}
	var out []contact
	for field, f := range fields {
		prop, ok := vcardProperty[field]
		if !ok {
			continue
		}
		var entries map[string]labelled
		if json.Unmarshal(f.Value, &entries) != nil {
			continue
		}
		for label, e := range entries {
			var value string
			if json.Unmarshal(e.Value, &value) != nil {
				continue
			}
			value = escape(value)
			if prop == "ADR" {
				value = ";;" + value + ";;;;" // the whole address as the street component
			}
			out = append(out, contact{property: prop, label: label, value: value, pref: min(e.Index+1, 100)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.property != b.property {
			return a.property < b.property
		}
		if a.pref != b.pref {
			return a.pref < b.pref
		}
		return a.label < b.label
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
