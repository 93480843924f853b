package testenv

import (
	"crypto/rand"
	"encoding/hex"
)

// UniqueName returns prefix followed by a dash and random lowercase hex,
// for resources that tests share a server for: S3 buckets, SQS queues, SES
// identities. With a prefix of lowercase letters, digits and dashes the
// result is a valid bucket and queue name.
func UniqueName(prefix string) string {
	return prefix + "-" + randomHex(6)
}

// randomHex returns 2n random lowercase hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b)
}
