package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Validated domain values, built once here and used by every service and by the multipart forms
// (docs/product.md §2): a clean name, a text that shows something, and a JSON document within
// the limits below.

// The one nesting limit and the one key limit of every JSON body and every JSON-valued form
// field: no object or array nests deeper than MaxJSONDepth, no object has more than MaxJSONKeys
// keys. The API's own documents stay far below both (a profile's data nests 5 deep, with at most
// 32 fields); the limits keep a stored document readable by every client.
const (
	MaxJSONDepth = 16
	MaxJSONKeys  = 64
)

// MaxNameLength bounds the names of profiles, cards and chat rooms, in characters.
const MaxNameLength = 100

// Name cleans a name or identifier (NFC, trimmed) and checks it: not blank, no control
// characters, at most maxRunes characters (0: no bound here). field names the input in errors.
func Name(field, s string, maxRunes int) (string, error) {
	n := CleanName(s)
	if err := checkText(field, n); err != nil {
		return "", err
	}
	if strings.ContainsFunc(n, unicode.IsControl) {
		return "", Invalid(field, "must not contain control characters")
	}
	if Invisible(n) {
		return "", Invalid(field, "must not be blank")
	}
	if maxRunes > 0 && utf8.RuneCountInString(n) > maxRunes {
		return "", Invalid(field, fmt.Sprintf("must be at most %d characters", maxRunes))
	}
	return n, nil
}

// Text checks a free text kept as typed (a chat message): valid UTF-8, no NUL, and something
// visible in it.
func Text(field, s string) (string, error) {
	if err := checkText(field, s); err != nil {
		return "", err
	}
	if Invisible(s) {
		return "", Invalid(field, "must not be blank")
	}
	return s, nil
}

func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8")
	}
	if strings.ContainsRune(s, 0) {
		return Invalid(field, "must not contain NUL characters")
	}
	return nil
}

// Invisible reports whether s shows nothing: empty, or only spaces, control and format
// characters (zero-width spaces and joiners, direction marks) and the blank fillers some
// keyboards produce.
func Invisible(s string) bool {
	for _, r := range s {
		switch {
		case unicode.IsSpace(r), unicode.IsControl(r), unicode.In(r, unicode.Cf, unicode.Zs, unicode.Zl, unicode.Zp):
		case r == '\u115F', r == '\u1160', r == '\u3164', r == '\uFFA0', r == '\u2800', r == '\uFFFC':
		default:
			return false
		}
	}
	return true
}

// JSONObject checks a JSON text that must hold one object: CheckJSON's rules, and an object at
// the top. It returns the text unchanged.
func JSONObject(field string, raw []byte) (json.RawMessage, error) {
	if err := CheckJSON(field, raw); err != nil {
		return nil, err
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, Invalid(field, "must be a JSON object")
	}
	return json.RawMessage(raw), nil
}

// JSONObjectOf encodes an already decoded value (a map from a JSON body) and checks it like
// JSONObject.
func JSONObjectOf(field string, v any) (json.RawMessage, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, Invalid(field, "must be a JSON object")
	}
	return JSONObject(field, raw)
}

// CheckJSON checks a JSON text the way every body of this API is checked before anything reads
// it: valid UTF-8, exactly one value with nothing after it, no NUL character (PostgreSQL cannot
// store it), no duplicate key in an object, at most MaxJSONKeys keys per object and at most
// MaxJSONDepth levels of nesting.
func CheckJSON(field string, raw []byte) error {
	if !utf8.Valid(raw) {
		return Invalid(field, "must be valid UTF-8")
	}
	if bytes.IndexByte(raw, 0) >= 0 {
		return Invalid(field, "must not contain NUL characters")
	}
	type frame struct {
		object  bool
		wantKey bool
		keys    map[string]struct{}
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	done := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if !done {
				return Invalid(field, "must be one JSON value")
			}
			return nil
		}
		if err != nil {
			return Invalid(field, "malformed JSON: "+err.Error())
		}
		if done {
			return Invalid(field, "must be one JSON value with nothing after it")
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
			} else {
				key, _ := tok.(string)
				if strings.ContainsRune(key, 0) {
					return Invalid(field, "must not contain NUL characters")
				}
				if _, dup := stack[n-1].keys[key]; dup {
					return Invalid(field, fmt.Sprintf("has the key %q twice in one object", key))
				}
				if len(stack[n-1].keys) >= MaxJSONKeys {
					return Invalid(field, fmt.Sprintf("has an object with more than %d keys", MaxJSONKeys))
				}
				stack[n-1].keys[key] = struct{}{}
				stack[n-1].wantKey = false
				continue
			}
		} else {
			switch t := tok.(type) {
			case json.Delim:
				if t == '{' || t == '[' {
					if len(stack) >= MaxJSONDepth {
						return Invalid(field, fmt.Sprintf("nests deeper than %d levels", MaxJSONDepth))
					}
					stack = append(stack, frame{object: t == '{', wantKey: t == '{', keys: map[string]struct{}{}})
					continue
				}
				stack = stack[:len(stack)-1] // ']' ('}' is read where a key is wanted)
			case string:
				if strings.ContainsRune(t, 0) {
					return Invalid(field, "must not contain NUL characters")
				}
			}
		}
		// A value ended: the enclosing object wants its next key, or the document is complete.
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].wantKey = true
			}
		} else {
			done = true
		}
	}
}
