package httpapi

import (
	"maps"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/bca-app/backend/gen/api"
)

// TestRouteTableAgreesWithTheSpecRouter: for every operation of the spec, with ordinary and odd
// path parameter values, and for requests no operation takes, the route table either gives
// exactly the general router's answer (operation and parameters) or leaves the request to it;
// every ordinary request is answered by the table itself.
func TestRouteTableAgreesWithTheSpecRouter(t *testing.T) {
	spec, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	general, err := gorillamux.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	table := newRouteTable(spec, spec.Servers[0].URL)
	param := regexp.MustCompile(`\{[^}]+\}`)
	var targets []string
	ordinary := map[string]bool{}
	for _, path := range spec.Paths.InMatchingOrder() {
		item := spec.Paths.Value(path)
		if len(item.Servers) > 0 {
			continue
		}
		for method := range item.Operations() {
			plain := method + " /api/v1" + param.ReplaceAllString(path, "17")
			ordinary[plain] = true
			targets = append(targets, plain)
			for _, odd := range []string{"-3", "abc", "a%2Fb", "%E2%82%AC", "a%20b", "9223372036854775808"} {
				targets = append(targets, method+" /api/v1"+param.ReplaceAllString(path, odd))
			}
			for _, other := range []string{"HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"} {
				targets = append(targets, other+" /api/v1"+param.ReplaceAllString(path, "17"))
			}
			targets = append(targets, method+" /api/v1"+param.ReplaceAllString(path, "17")+"/",
				method+" /api/v1//"+param.ReplaceAllString(path, "17"), method+" /api/v1/x/.."+param.ReplaceAllString(path, "17"))
		}
	}
	targets = append(targets, "GET /api/v1/", "GET /api/v1/nothing/here", "GET /api/v2/ping")
	answered := 0
	for _, target := range targets {
		method, path, _ := strings.Cut(target, " ")
		r := httptest.NewRequest(method, path, nil)
		route, params, ok := table.find(r)
		want, wantParams, err := general.FindRoute(r)
		if !ok {
			if ordinary[target] {
				t.Errorf("%s: left to the general router", target)
			}
			continue
		}
		answered++
		if err != nil {
			t.Errorf("%s: the table answers %s, the general router %v", target, route.Operation.OperationID, err)
			continue
		}
		if route.Operation != want.Operation || route.PathItem != want.PathItem || route.Path != want.Path || route.Method != want.Method ||
			!maps.Equal(params, wantParams) && !(len(params) == 0 && len(wantParams) == 0) {
			t.Errorf("%s: table %s %v, general router %s %v", target, route.Operation.OperationID, params, want.Operation.OperationID, wantParams)
		}
	}
	if answered < len(ordinary) {
		t.Fatalf("the table answered %d of %d requests, fewer than the %d ordinary ones", answered, len(targets), len(ordinary))
	}
	t.Logf("%d requests, %d answered by the table (%d ordinary)", len(targets), answered, len(ordinary))
}
