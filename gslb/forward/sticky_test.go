package forward

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testStickyKey = "sticky-test-key-0123456789abcdef"

// setCookieValue returns the value of the sticky cookie an answer sets, ""
// when it sets none.
func setCookieValue(r reply, name string) string {
	for _, line := range r.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err == nil && c.Name == name {
			return c.Value
		}
	}
	return ""
}

// A cookie-sticky pool: the first answer pins the client with a signed
// cookie that does not show the backend; requests with it go to the same
// backend; a forged cookie pins nobody; when the pinned backend drains,
// the request goes elsewhere and the cookie is rewritten to the new one,
// which then sticks.
func TestStickyCookie(t *testing.T) {
	t.Parallel()
	a, b, c := startHTTPBackend(t, "a"), startHTTPBackend(t, "b"), startHTTPBackend(t, "c")
	h := startForwarderWith(t, func(dir string) {
		os.WriteFile(filepath.Join(dir, "sticky.key"), []byte(testStickyKey+"\n"), 0o600)
	}, httpPool("web", `balance = "round_robin"
[pool.sticky]
mode = "cookie"
key_file = "sticky.key"
max_age = "1h"`, a, b, c)+listenerTOML("web", "http", "web", ""))
	cl := httpClient()
	url := h.url("web") + "/"

	first := send(t, cl, "GET", url, "", "", nil)
	token := setCookieValue(first, "meridian_web")
	if token == "" {
		t.Fatalf("no sticky cookie in %v", first.header)
	}
	for _, addr := range []string{a.addr, b.addr, c.addr} {
		if strings.Contains(token, addr) || strings.Contains(token, strings.Split(addr, ":")[1]) {
			t.Errorf("the cookie %q shows the backend's address", token)
		}
	}
	line := first.header.Get("Set-Cookie")
	for _, attr := range []string{"HttpOnly", "SameSite=Lax", "Max-Age=3600", "Path=/"} {
		if !strings.Contains(line, attr) {
			t.Errorf("Set-Cookie %q lacks %s", line, attr)
		}
	}
	pinned := first.seen.Backend
	withCookie := map[string]string{"Cookie": "meridian_web=" + token}
	for i := range 10 {
		r := send(t, cl, "GET", url, "", "", withCookie)
		if r.seen.Backend != pinned {
			t.Fatalf("request %d with the cookie went to %s, want %s", i, r.seen.Backend, pinned)
		}
		if setCookieValue(r, "meridian_web") != "" {
			t.Errorf("request %d: the cookie was set again though it was right", i)
		}
	}

	// A client cannot make a cookie for a backend of its choosing: a
	// forged one is ignored, and a real one is set.
	forged := send(t, cl, "GET", url, "", "", map[string]string{"Cookie": "meridian_web=" + strings.Repeat("A", len(token))})
	if got := setCookieValue(forged, "meridian_web"); got == "" || got == strings.Repeat("A", len(token)) {
		t.Errorf("a forged cookie got back %q", got)
	}

	// The pinned backend drains: the request goes elsewhere and the
	// cookie follows it there.
	code, body := h.request("POST", "/api/v1/pools/web/backends/"+map[string]string{"a": a.addr, "b": b.addr, "c": c.addr}[pinned]+"/drain", true)
	if code != http.StatusOK {
		t.Fatalf("drain: %d %s", code, body)
	}
	moved := send(t, cl, "GET", url, "", "", withCookie)
	if moved.seen.Backend == pinned || moved.code != http.StatusOK {
		t.Fatalf("with %s draining, the pinned request went to %q (%d)", pinned, moved.seen.Backend, moved.code)
	}
	newToken := setCookieValue(moved, "meridian_web")
	if newToken == "" || newToken == token {
		t.Fatalf("the cookie was not rewritten: %q", newToken)
	}
	for i := range 5 {
		r := send(t, cl, "GET", url, "", "", map[string]string{"Cookie": "meridian_web=" + newToken})
		if r.seen.Backend != moved.seen.Backend {
			t.Fatalf("request %d with the rewritten cookie went to %s, want %s", i, r.seen.Backend, moved.seen.Backend)
		}
	}
	for result, want := range map[string]float64{"hit": 15, "assigned": 2, "moved": 1} {
		if got := h.metric(`meridian_forward_pool_sticky_total{pool="web",result="` + result + `"}`); got != want {
			t.Errorf("sticky %s = %v, want %v", result, got, want)
		}
	}
}

// Sticky by header and by client address: the same value always lands on
// the same backend, different values spread, and when that backend goes
// only its clients move. The client address is the one trusted proxies
// vouch for.
func TestStickyHashing(t *testing.T) {
	t.Parallel()
	bs := []*httpBackend{startHTTPBackend(t, "a"), startHTTPBackend(t, "b"), startHTTPBackend(t, "c")}
	h := startForwarder(t, httpPool("by-header", `[pool.sticky]
mode = "header"
header = "x-session"`, bs...)+httpPool("by-ip", `[pool.sticky]
mode = "source_ip"`, bs...)+
		listenerTOML("header", "http", "by-header", "")+
		listenerTOML("ip", "http", "by-ip", `trusted_proxies = ["127.0.0.1"]`))
	cl := httpClient()
	tests := []struct{ listener, header string }{{"header", "X-Session"}, {"ip", "X-Forwarded-For"}}
	for _, tt := range tests {
		t.Run(tt.listener, func(t *testing.T) {
			first := map[string]string{}
			spread := map[string]bool{}
			for i := range 30 {
				key := fmt.Sprintf("198.51.100.%d", i+1)
				r := send(t, cl, "GET", h.url(tt.listener)+"/", "", "", map[string]string{tt.header: key})
				first[key] = r.seen.Backend
				spread[r.seen.Backend] = true
				for range 3 {
					if again := send(t, cl, "GET", h.url(tt.listener)+"/", "", "", map[string]string{tt.header: key}); again.seen.Backend != r.seen.Backend {
						t.Fatalf("%s %s went to %s, then %s", tt.header, key, r.seen.Backend, again.seen.Backend)
					}
				}
			}
			if len(spread) != 3 {
				t.Errorf("30 keys reached %d backends, want all 3", len(spread))
			}
			// Take one backend out: only its keys move.
			poolName := map[string]string{"header": "by-header", "ip": "by-ip"}[tt.listener]
			if code, _ := h.request("POST", "/api/v1/pools/"+poolName+"/backends/"+bs[0].addr+"/drain", true); code != 200 {
				t.Fatal("drain failed")
			}
			defer h.request("DELETE", "/api/v1/pools/"+poolName+"/backends/"+bs[0].addr+"/drain", true)
			for key, was := range first {
				r := send(t, cl, "GET", h.url(tt.listener)+"/", "", "", map[string]string{tt.header: key})
				if was != "a" && r.seen.Backend != was {
					t.Errorf("%s: moved from %s to %s though %s stayed", key, was, r.seen.Backend, was)
				}
				if r.seen.Backend == "a" {
					t.Errorf("%s: still on the drained backend", key)
				}
			}
		})
	}
}
