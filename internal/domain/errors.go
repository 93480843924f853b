// Package domain holds the domain vocabulary shared by every service: errors with stable codes and
// the small value types that cross package boundaries. It depends on nothing else in the module.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the class of a domain error; the HTTP layer maps each kind to one status.
type Kind int

// The kinds of failure a caller can cause or meet.
const (
	KindInternal Kind = iota
	KindInvalid
	KindUnauthenticated
	KindForbidden
	KindNotFound
	KindConflict
	KindPreconditionFailed
	KindPreconditionRequired
	KindTooLarge
	KindUnsupportedMediaType
	KindRateLimited
	KindUnavailable
	KindGone // a link that existed and no longer works (revoked, expired, used up)
)

// FieldError names one bad input field and why it is bad.
type FieldError struct {
	Field  string
	Reason string
}

// Error is a failure with a stable machine-readable code (e.g. "account.wrong_password").
type Error struct {
	Kind       Kind
	Code       string
	Message    string
	Fields     []FieldError
	RetryAfter time.Duration // for KindRateLimited and temporary locks
}

func (e *Error) Error() string {
	if len(e.Fields) > 0 {
		return fmt.Sprintf("%s: %s %v", e.Code, e.Message, e.Fields)
	}
	return e.Code + ": " + e.Message
}

// E builds an Error.
func E(kind Kind, code, message string, fields ...FieldError) *Error {
	return &Error{Kind: kind, Code: code, Message: message, Fields: fields}
}

// Invalid is a 400 for one field.
func Invalid(field, reason string) *Error {
	return E(KindInvalid, "request.invalid", "The request is invalid.", FieldError{Field: field, Reason: reason})
}

// NotFound is the answer for anything absent or not visible to the caller.
func NotFound(what string) *Error {
	return E(KindNotFound, "resource.not_found", what+" was not found.")
}

// Unauthenticated is the answer for missing or unusable credentials.
func Unauthenticated(code, message string) *Error {
	return E(KindUnauthenticated, code, message)
}

// Forbidden is the answer for a known caller that may not do this.
func Forbidden(code, message string) *Error {
	return E(KindForbidden, code, message)
}

// RateLimited is the answer when a caller has to wait.
func RateLimited(retryAfter time.Duration) *Error {
	e := E(KindRateLimited, "request.rate_limited", "Too many requests; try again later.")
	e.RetryAfter = retryAfter
	return e
}

// AsError returns the domain error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// IsKind reports whether err carries a domain error of the kind.
func IsKind(err error, kind Kind) bool {
	e, ok := AsError(err)
	return ok && e.Kind == kind
}
