package forward

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// The routing table: each request goes where the documented precedence
// sends it, with the path rewritten, redirected or answered by the
// forwarder as its route says, and the decision is in the access log.
func TestHTTPRouting(t *testing.T) {
	t.Parallel()
	names := []string{"web", "api", "apiv2", "admin", "shop", "wild", "beta", "debug", "deleter", "regex", "exact", "static"}
	backends := map[string]*httpBackend{}
	var src strings.Builder
	for _, n := range names {
		backends[n] = startHTTPBackend(t, n)
		src.WriteString(httpPool(n, "", backends[n]))
	}
	src.WriteString(`[access_log]
path = "access.log"

` + listenerTOML("web", "http", "web", "") + `
[[listener.route]]
name = "api"
host = ["api.example.test"]
path_prefix = "/"
pool = "api"

[[listener.route]]
name = "api-v2"
host = ["api.example.test"]
path_prefix = "/v2/"
strip_prefix = "/v2"
pool = "apiv2"

[[listener.route]]
name = "admin"
host = ["api.example.test"]
path = "/admin"
pool = "admin"

[[listener.route]]
name = "shops"
host = ["*.shop.example.test"]
pool = "wild"

[[listener.route]]
name = "shop-www"
host = ["www.shop.example.test"]
pool = "shop"

[[listener.route]]
name = "beta"
path_prefix = "/app/"
cookie = { beta = "yes" }
pool = "beta"

[[listener.route]]
name = "app-debug"
path_prefix = "/app/"
header = { X-Debug = "*" }
query = { trace = "1" }
pool = "debug"

[[listener.route]]
name = "deletes"
path_prefix = "/app/"
method = ["DELETE"]
pool = "deleter"

[[listener.route]]
name = "reports"
path_regexp = "^/reports/([0-9]+)$"
replace_path = "/r/$1"
pool = "regex"

[[listener.route]]
name = "report-zero"
path = "/reports/0"
pool = "exact"

[[listener.route]]
name = "static"
path_prefix = "/static"
pool = "static"

[[listener.route]]
name = "to-https"
host = ["insecure.example.test"]
redirect = "https://{host}{uri}"
redirect_code = 301

[[listener.route]]
name = "gone"
path = "/old"
respond = { status = 410, body = "gone for good\n" }
`)
	h := startForwarder(t, src.String())
	c := httpClient()
	base := h.url("web")

	tests := []struct {
		name, method, host, path string
		header                   map[string]string
		wantBackend, wantPath    string
		wantCode                 int
	}{
		{"exact host, prefix /", "GET", "api.example.test", "/users", nil, "api", "/users", 200},
		{"host is case-blind, port ignored", "GET", "API.Example.Test:8080", "/users", nil, "api", "/users", 200},
		{"longer prefix wins, stripped", "GET", "api.example.test", "/v2/users", nil, "apiv2", "/users", 200},
		{"exact path beats prefixes", "GET", "api.example.test", "/admin", nil, "admin", "/admin", 200},
		{"exact path is exact", "GET", "api.example.test", "/admin/x", nil, "api", "/admin/x", 200},
		{"exact host beats wildcard", "GET", "www.shop.example.test", "/", nil, "shop", "/", 200},
		{"wildcard is one label", "GET", "eu.shop.example.test", "/", nil, "wild", "/", 200},
		{"wildcard not two labels", "GET", "a.eu.shop.example.test", "/", nil, "web", "/", 200},
		{"cookie", "GET", "x.test", "/app/home", map[string]string{"Cookie": "beta=yes"}, "beta", "/app/home", 200},
		{"cookie value must match", "GET", "x.test", "/app/home", map[string]string{"Cookie": "beta=no"}, "web", "/app/home", 200},
		{"more conditions first: header and query", "GET", "x.test", "/app/home?trace=1", map[string]string{"Cookie": "beta=yes", "X-Debug": "on"}, "debug", "/app/home", 200},
		{"query alone is not enough", "GET", "x.test", "/app/home?trace=1", nil, "web", "/app/home", 200},
		{"method", "DELETE", "x.test", "/app/item/3", nil, "deleter", "/app/item/3", 200},
		{"regexp, replaced with its group", "GET", "x.test", "/reports/42", nil, "regex", "/r/42", 200},
		{"exact path beats regexp", "GET", "x.test", "/reports/0", nil, "exact", "/reports/0", 200},
		{"prefix without slash", "GET", "x.test", "/statics/a.css", nil, "static", "/statics/a.css", 200},
		{"no route: the listener's pool", "GET", "x.test", "/elsewhere", nil, "web", "/elsewhere", 200},
		{"redirect to https", "GET", "insecure.example.test", "/a/b?c=d", nil, "", "", 301},
		{"fixed answer", "GET", "x.test", "/old", nil, "", "", 410},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := send(t, c, tt.method, base+tt.path, tt.host, "", tt.header)
			if r.code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", r.code, tt.wantCode, r.body)
			}
			if r.seen.Backend != tt.wantBackend || r.seen.Path != tt.wantPath {
				t.Errorf("went to %q with path %q, want %q with %q", r.seen.Backend, r.seen.Path, tt.wantBackend, tt.wantPath)
			}
		})
	}
	r := send(t, c, "GET", base+"/a/b?c=d", "insecure.example.test:8080", "", nil)
	if loc := r.header.Get("Location"); loc != "https://insecure.example.test/a/b?c=d" {
		t.Errorf("redirect Location = %q", loc)
	}
	if r := send(t, c, "GET", base+"/old", "x.test", "", nil); r.body != "gone for good\n" || r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("fixed answer = %q, %q", r.body, r.header.Get("Content-Type"))
	}
	// The path reaches the backend as the client escaped it.
	if r := send(t, c, "GET", base+"/v2/a%2Fb", "api.example.test", "", nil); r.seen.RawPath != "/a%2Fb" {
		t.Errorf("escaped path after strip_prefix: raw %q, path %q", r.seen.RawPath, r.seen.Path)
	}

	// Every request is in the access log, with the route and backend.
	logPath := filepath.Join(h.dir(), "access.log")
	var lines []map[string]any
	testkit.Eventually(t, "the access log has every request", func() bool {
		lines = readJSONLines(t, logPath)
		return len(lines) >= len(tests)+3
	})
	found := false
	for _, l := range lines {
		if l["route"] == "api-v2" && l["backend"] == backends["apiv2"].addr && l["pool"] == "apiv2" &&
			l["status"] == float64(200) && l["upstream_path"] == "/users" && l["uri"] == "/v2/users" {
			found = true
		}
	}
	if !found {
		t.Errorf("no access log line for the api-v2 request: %v", lines)
	}
	if got := h.metric(`meridian_forward_http_requests_total{code="2xx",listener="web",route="api-v2"}`); got != 2 {
		t.Errorf("requests of route api-v2 = %v, want 2", got)
	}
	if got := h.metric(`meridian_forward_http_requests_total{code="4xx",listener="web",route="gone"}`); got != 2 {
		t.Errorf("4xx of route gone = %v, want 2", got)
	}
}

// A listener without a pool answers 404 when no route takes a request.
func TestHTTPNoRoute(t *testing.T) {
	t.Parallel()
	a := startHTTPBackend(t, "a")
	h := startForwarder(t, httpPool("a", "", a)+listenerTOML("web", "http", "", `[[listener.route]]
host = ["a.test"]
pool = "a"`))
	c := httpClient()
	if r := send(t, c, "GET", h.url("web")+"/", "a.test", "", nil); r.seen.Backend != "a" {
		t.Errorf("a.test went to %q", r.seen.Backend)
	}
	if r := send(t, c, "GET", h.url("web")+"/", "b.test", "", nil); r.code != http.StatusNotFound {
		t.Errorf("b.test: %d, want 404", r.code)
	}
	if got := h.metric(`meridian_forward_http_requests_total{code="4xx",listener="web",route="no_route"}`); got != 1 {
		t.Errorf("no_route 4xx = %v, want 1", got)
	}
}

func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("access log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// X-Forwarded-* and Forwarded: from a trusted proxy they are carried on
// with this hop added, and the client address is the one the proxy
// vouches for; from anyone else they are replaced. Hop-by-hop headers
// never reach the backend.
func TestHTTPForwardedHeaders(t *testing.T) {
	t.Parallel()
	b := startHTTPBackend(t, "b")
	h := startForwarder(t, httpPool("b", "", b)+`[access_log]
path = "access.log"
`+listenerTOML("trusting", "http", "b", `trusted_proxies = ["127.0.0.0/8", "10.0.0.0/8"]`)+
		listenerTOML("wary", "http", "b", `trusted_proxies = ["10.0.0.0/8"]`))
	c := httpClient()
	sent := map[string]string{
		"X-Forwarded-For":   "203.0.113.7, 10.1.1.1",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "www.example.test",
		"Forwarded":         `for=203.0.113.7;proto=https, for=10.1.1.1`,
		"Connection":        "X-Hop, keep-alive",
		"X-Hop":             "secret",
		"Keep-Alive":        "timeout=5",
		"Te":                "trailers, deflate",
	}
	tests := []struct {
		listener                       string
		xff, proto, fhost, fwd, client string
	}{
		{"trusting", "203.0.113.7, 10.1.1.1, 127.0.0.1", "https", "www.example.test",
			`for=203.0.113.7;proto=https, for=10.1.1.1, for=127.0.0.1;host="app.test:80";proto=http`, "203.0.113.7"},
		{"wary", "127.0.0.1", "http", "app.test:80", `for=127.0.0.1;host="app.test:80";proto=http`, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.listener, func(t *testing.T) {
			r := send(t, c, "GET", h.url(tt.listener)+"/who", "app.test:80", "", sent)
			got := r.seen.Header
			if got.Get("X-Forwarded-For") != tt.xff || got.Get("X-Forwarded-Proto") != tt.proto ||
				got.Get("X-Forwarded-Host") != tt.fhost || got.Get("Forwarded") != tt.fwd {
				t.Errorf("backend saw X-Forwarded-For %q, -Proto %q, -Host %q, Forwarded %q\nwant %q, %q, %q, %q",
					got.Get("X-Forwarded-For"), got.Get("X-Forwarded-Proto"), got.Get("X-Forwarded-Host"), got.Get("Forwarded"),
					tt.xff, tt.proto, tt.fhost, tt.fwd)
			}
			for _, hop := range []string{"X-Hop", "Keep-Alive", "Connection"} {
				if v := got.Get(hop); v != "" {
					t.Errorf("hop-by-hop %s reached the backend: %q", hop, v)
				}
			}
			if got.Get("Te") != "trailers" {
				t.Errorf("TE = %q, want only trailers", got.Get("Te"))
			}
			if r.seen.Host != "app.test:80" {
				t.Errorf("Host = %q, want the client's", r.seen.Host)
			}
		})
	}
	logPath := filepath.Join(h.dir(), "access.log")
	testkit.Eventually(t, "both requests logged", func() bool { return len(readJSONLines(t, logPath)) == 2 })
	for i, l := range readJSONLines(t, logPath) {
		want := map[string]string{"trusting": tests[0].client, "wary": tests[1].client}[l["listener"].(string)]
		if l["client"] != want {
			t.Errorf("log line %d: client %v, want %s", i, l["client"], want)
		}
	}
}

// A request's answer carries the listener's response headers, over what
// the backend said, and so do the forwarder's own answers.
func TestHTTPResponseHeaders(t *testing.T) {
	t.Parallel()
	b := startHTTPBackend(t, "b")
	h := startForwarder(t, httpPool("b", "", b)+listenerTOML("web", "http", "b", `
[listener.response_headers]
Strict-Transport-Security = "max-age=63072000"
x-frame-options = "DENY"
X-Backend = "hidden"`))
	c := httpClient()
	r := send(t, c, "GET", h.url("web")+"/", "", "", nil)
	if r.header.Get("Strict-Transport-Security") != "max-age=63072000" || r.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers = %v", r.header)
	}
	if got := r.header.Values("X-Backend"); len(got) != 1 || got[0] != "hidden" {
		t.Errorf("X-Backend = %q, want the listener's value alone", got)
	}
	b.srv.Close()
	r = send(t, c, "GET", h.url("web")+"/", "", "", nil)
	if r.code != http.StatusBadGateway || r.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("with the backend gone: %d %v", r.code, r.header)
	}
}

// An http listener behind a load balancer that speaks the PROXY protocol:
// the client is the header's source, and X-Forwarded-For says so.
func TestHTTPAcceptProxyProtocol(t *testing.T) {
	t.Parallel()
	b := startHTTPBackend(t, "b")
	h := startForwarder(t, httpPool("b", "", b)+listenerTOML("web", "http", "b", "accept_proxy_protocol = true"))
	c := dialRaw(t, h.addr("web"))
	io.WriteString(c, "PROXY TCP4 203.0.113.9 192.0.2.1 40000 80\r\nGET /lb HTTP/1.1\r\nHost: app.test\r\n\r\n")
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s seen
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if got := s.Header.Get("X-Forwarded-For"); got != "203.0.113.9" {
		t.Errorf("X-Forwarded-For = %q, want the PROXY header's source", got)
	}
	// Without the header the connection is refused.
	raw := dialRaw(t, h.addr("web"))
	io.WriteString(raw, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
	if resp, err := http.ReadResponse(raw.r, nil); err == nil && resp.StatusCode == http.StatusOK {
		t.Error("a request without a PROXY header was served")
	}
}

// TestReloadClosesRemovedPoolConnections: requests through the proxy
// share one keep-alive backend connection, which the reload that removes
// the pool closes instead of leaving it idle for ever.
func TestReloadClosesRemovedPoolConnections(t *testing.T) {
	var open, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			conns.Add(1)
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	other := startHTTPBackend(t, "other")
	check := "[pool.check]\ntype = \"none\""
	src := pool("kept-alive", check, addr) + pool("other", check, other.addr) + listenerTOML("web", "http", "kept-alive", "")
	h := startForwarder(t, src)
	c := httpClient()
	url := "http://" + h.addr("web") + "/"
	for i := range 5 {
		if r := send(t, c, http.MethodGet, url, "", "", nil); r.code != 200 || r.body != "ok" {
			t.Fatalf("request %d: %d %q", i, r.code, r.body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("backend connections = %d, want 1", n)
	}
	h.reload(pool("other", check, other.addr) + listenerTOML("web", "http", "other", ""))
	testkit.Eventually(t, "the removed pool's idle connection closed", func() bool { return open.Load() == 0 })
}
