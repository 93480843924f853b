package httpapi

import (
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

// routeTable finds the spec operation of a request in one lookup of the standard library's
// ServeMux (the same patterns the generated handler registers), instead of kin-openapi's
// gorillamux router, which tries every path's regular expression in turn. It answers only what
// it can answer exactly; anything else (no match, a method the path lacks, a path a ServeMux
// would clean or redirect) goes to the general router, so 404/405 answers are unchanged.
// TestRouteTableAgreesWithTheSpecRouter holds the two to the same answers.
type routeTable struct {
	mux    *http.ServeMux
	routes map[string]tableRoute // by ServeMux pattern
}

type tableRoute struct {
	route  routers.Route
	params []routeParam
}

// routeParam is a path parameter: its name and the index of its segment in the request path.
type routeParam struct {
	name    string
	segment int
}

func newRouteTable(spec *openapi3.T, base string) *routeTable {
	t := &routeTable{mux: http.NewServeMux(), routes: map[string]tableRoute{}}
	for _, path := range spec.Paths.InMatchingOrder() {
		item := spec.Paths.Value(path)
		if len(item.Servers) > 0 {
			continue // served under another base; the general router knows it
		}
		var params []routeParam
		for i, seg := range strings.Split(base+path, "/") {
			if name, ok := strings.CutPrefix(seg, "{"); ok && strings.HasSuffix(name, "}") {
				params = append(params, routeParam{name: strings.TrimSuffix(name, "}"), segment: i})
			}
		}
		for method, op := range item.Operations() {
			pattern := method + " " + base + path
			t.mux.Handle(pattern, http.NotFoundHandler()) // only its pattern is used
			t.routes[pattern] = tableRoute{
				route:  routers.Route{Spec: spec, Server: spec.Servers[0], Path: path, PathItem: item, Method: method, Operation: op},
				params: params,
			}
		}
	}
	return t
}

// find returns the route and path parameters of r, or ok=false when the general router must
// decide.
func (t *routeTable) find(r *http.Request) (*routers.Route, map[string]string, bool) {
	segments := strings.Split(r.URL.EscapedPath(), "/")
	for _, seg := range segments[1:] {
		if seg == "" || seg == "." || seg == ".." {
			return nil, nil, false // a ServeMux would match the cleaned path; the spec router does not
		}
	}
	_, pattern := t.mux.Handler(r)
	tr, found := t.routes[pattern]
	if !found || tr.route.Method != r.Method {
		return nil, nil, false // no match, or GET's pattern matching a HEAD the spec lacks
	}
	route := tr.route
	if len(tr.params) == 0 {
		return &route, nil, true
	}
	params := make(map[string]string, len(tr.params))
	for _, p := range tr.params {
		if p.segment >= len(segments) {
			return nil, nil, false
		}
		params[p.name] = segments[p.segment]
	}
	return &route, params, true
}
