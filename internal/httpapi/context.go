package httpapi

import (
	"context"
	"net"
	"net/http"

	"github.com/bca-app/backend/internal/auth"
)

// requestInfo travels with each request: set up by the outermost middleware, filled in by the
// inner layers (route, caller), read back for the access log and metrics.
type requestInfo struct {
	ID          string
	OperationID string
	Principal   *auth.Principal
	ClientAddr  string
	UserAgent   string
	Request     *http.Request
	Err         error
}

type infoKey struct{}

func withInfo(ctx context.Context, info *requestInfo) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(infoKey{}).(*requestInfo)
	return info
}

// clientAddress is the peer address. Forwarded headers are not trusted: behind a load balancer
// the balancer's own address limit applies until a trusted-proxy setting exists.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
