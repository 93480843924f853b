package domain

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

// Conditional is the one conditional-write flow (If-Match) of profiles, cards and rooms. want is
// what IfMatch returned; lock reads the row's current version under a row lock inside the
// write's transaction (and explains absence, e.g. 404); write then changes the row at exactly
// that version, which nobody can move before the commit. A stale tag is ErrVersionMismatch,
// and "*" matches whatever version is current, so it never fails with 412 under concurrency.
func Conditional(want int64, lock func() (current int64, err error), write func(version int64) error) error {
	current, err := lock()
	if err != nil {
		return err
	}
	if want != AnyVersion && want != current {
		return ErrVersionMismatch
	}
	return write(current)
}
