package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/api/apitest"
)

// TestOpenAPIDescribesEveryRoute: the routes the server registers and the
// operations the OpenAPI description has are the same set.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	spec, err := apitest.NewOpenAPI(OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Hub: NewHub(nil, 0), Metrics: http.NotFoundHandler()})
	var routes []string
	for _, r := range s.echo.Routes() {
		if r.Path == "/*" || strings.HasSuffix(r.Path, "/*") {
			continue // the console's files, and echo's not-found routes
		}
		path := r.Path
		for _, p := range strings.Split(path, "/") {
			if strings.HasPrefix(p, ":") {
				path = strings.Replace(path, p, "{"+p[1:]+"}", 1)
			}
		}
		routes = append(routes, r.Method+" "+path)
	}
	var described []string
	for path, item := range spec.Doc().Paths.Map() {
		for method := range item.Operations() {
			described = append(described, method+" "+path)
		}
	}
	slices.Sort(routes)
	routes = slices.Compact(routes)
	slices.Sort(described)
	for _, r := range routes {
		if !slices.Contains(described, r) {
			t.Errorf("%s is a route the OpenAPI description does not have", r)
		}
	}
	for _, d := range described {
		if !slices.Contains(routes, d) && !optionalRoutes[d] {
			t.Errorf("the OpenAPI description has %s, which the server does not route", d)
		}
	}
}

// optionalRoutes are described before this branch routes them.
var optionalRoutes = map[string]bool{"POST /api/tokens/refresh": true}
