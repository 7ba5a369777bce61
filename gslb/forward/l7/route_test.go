package l7

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/h1"
)

// TestRoutePrecedence holds the order of precedence route.go documents,
// read the same by both servers: net/http's requests and the fast path's.
func TestRoutePrecedence(t *testing.T) {
	routes := []config.ForwardRoute{
		{Name: "any"},
		{Name: "prefix-api", PathPrefix: "/api/"},
		{Name: "prefix-api-v2", PathPrefix: "/api/v2/"},
		{Name: "regexp", PathRegexp: "/v[0-9]+/items$"},
		{Name: "exact", Path: "/api/v2/items"},
		{Name: "prefix-api-get", PathPrefix: "/api/", Method: []string{"GET"}},
		{Name: "header", PathPrefix: "/api/", Header: map[string]string{"X-Beta": "*"}},
		{Name: "cookie", PathPrefix: "/shop/", Cookie: map[string]string{"tier": "gold"}},
		{Name: "query", PathPrefix: "/shop/", Query: map[string]string{"debug": "1"}},
		{Name: "wild", Host: []string{"*.example.com"}},
		{Name: "exact-host", Host: []string{"www.example.com"}, PathPrefix: "/"},
	}
	compiled := make([]*route, len(routes))
	hosts := make([][]string, len(routes))
	for j := range routes {
		compiled[j] = compileRoute(j, &routes[j])
		hosts[j] = routes[j].Host
	}
	table := newRouteTable(compiled, hosts)
	for _, tc := range []struct {
		head string // request line and headers, without the final CRLF
		want string
	}{
		{"GET /api/v2/items HTTP/1.1\r\nHost: other.test", "exact"},
		{"GET /v3/items HTTP/1.1\r\nHost: other.test", "regexp"},
		{"GET /api/v3/items HTTP/1.1\r\nHost: other.test", "prefix-api-get"}, // a prefix before a regexp
		{"GET /api/v2/other HTTP/1.1\r\nHost: other.test", "prefix-api-v2"},
		{"POST /api/x HTTP/1.1\r\nHost: other.test\r\nContent-Length: 0", "prefix-api"},
		{"GET /api/x HTTP/1.1\r\nHost: other.test", "prefix-api-get"},
		{"POST /api/x HTTP/1.1\r\nHost: other.test\r\nX-Beta: yes\r\nContent-Length: 0", "header"},
		{"GET /shop/ HTTP/1.1\r\nHost: other.test\r\nCookie: tier=gold", "cookie"},
		{"GET /shop/?debug=1 HTTP/1.1\r\nHost: other.test", "query"},
		{"GET /shop/?debug=2 HTTP/1.1\r\nHost: other.test", "any"},
		{"GET /api/v2/items HTTP/1.1\r\nHost: shop.example.com", "wild"},
		{"GET /api/v2/items HTTP/1.1\r\nHost: WWW.Example.com.:8080", "exact-host"},
		{"GET /x HTTP/1.1\r\nHost: a.b.example.com", "any"},
	} {
		head := tc.head + "\r\n\r\n"
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if err != nil {
			t.Fatalf("%q: %v", tc.head, err)
		}
		if rt := table.find(&stdRequest{r: r}, requestHost(r)); rt == nil || rt.name != tc.want {
			t.Errorf("net/http: %q took %v, want %s", tc.head, routeName(rt), tc.want)
		}
		var q h1.Request
		if !q.Parse(head) {
			t.Fatalf("the fast path does not take %q", tc.head)
		}
		if rt := table.find(&h1View{q: &q}, hostName(q.Host)); rt == nil || rt.name != tc.want {
			t.Errorf("fast path: %q took %v, want %s", tc.head, routeName(rt), tc.want)
		}
	}
}

func routeName(rt *route) string {
	if rt == nil {
		return "none"
	}
	return rt.name
}

// TestRewritePath holds what strip_prefix and replace_path send the
// backend.
func TestRewritePath(t *testing.T) {
	for _, tc := range []struct {
		rc       config.ForwardRoute
		esc, out string
	}{
		{config.ForwardRoute{PathPrefix: "/api/", StripPrefix: "/api"}, "/api/items", "/items"},
		{config.ForwardRoute{PathPrefix: "/api/", StripPrefix: "/api/"}, "/api/items", "/items"},
		{config.ForwardRoute{PathPrefix: "/", StripPrefix: "/api"}, "/other", ""},
		{config.ForwardRoute{Path: "/old", ReplacePath: "/new"}, "/old", "/new"},
		{config.ForwardRoute{PathRegexp: "^/u/([a-z]+)$", ReplacePath: "/users/$1"}, "/u/ann", "/users/ann"},
		{config.ForwardRoute{PathPrefix: "/"}, "/a%2Fb", ""},
	} {
		if got := compileRoute(0, &tc.rc).rewritePath(tc.esc); got != tc.out {
			t.Errorf("%+v: %q became %q, want %q", tc.rc, tc.esc, got, tc.out)
		}
	}
}
