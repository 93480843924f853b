package bca

import (
	"strconv"
	"strings"
)

// ETag is the strong, quoted entity tag of a row version. Profiles, cards and rooms share it,
// and the sync file's commit_id is the same value without the quotes.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// AnyVersion is what IfMatch returns for "If-Match: *".
const AnyVersion = -1

// IfMatch reads the version an If-Match header names, for a conditional write: missing → 428,
// not one of our strong tags → 412 (a weak or foreign tag can never match), "*" → AnyVersion.
func IfMatch(header *string) (int64, error) {
	if header == nil || strings.TrimSpace(*header) == "" {
		return 0, E(KindPreconditionRequired, "request.if_match_required", "Send If-Match with the ETag of the version you are changing.")
	}
	tag := strings.TrimSpace(*header)
	if tag == "*" {
		return AnyVersion, nil
	}
	if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return 0, ErrVersionMismatch
	}
	v, err := strconv.ParseInt(tag[1:len(tag)-1], 10, 64)
	if err != nil || v < 0 {
		return 0, ErrVersionMismatch
	}
	return v, nil
}

// ErrVersionMismatch answers a conditional write whose version is no longer current.
var ErrVersionMismatch = E(KindPreconditionFailed, "request.version_mismatch", "The resource changed since you read it; read it again.")
