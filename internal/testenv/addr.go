package testenv

import (
	"net"
	"testing"
)

// FreeAddr is a loopback address (host:port) nobody listens on: for a server a test starts
// itself, or a dependency that is not there.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
