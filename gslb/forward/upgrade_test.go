package forward

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// A WebSocket handshake passes through and the tunnel carries bytes both
// ways; a reload that changes the routes and pools keeps it and a
// keep-alive connection open, and the connection sees the new routes.
func TestUpgradeAndReloadKeepConnections(t *testing.T) {
	t.Parallel()
	a, b := startHTTPBackend(t, "a"), startHTTPBackend(t, "b")
	before := httpPool("a", "", a) + httpPool("b", "", b) + listenerTOML("web", "http", "a", `[[listener.route]]
name = "ws"
path_prefix = "/ws"
pool = "a"`)
	h := startForwarder(t, before)

	ws := dialRaw(t, h.addr("web"))
	resp := ws.upgrade(t, "app.test", "/ws/chat")
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
		resp.Header.Get("X-Backend") != "a" {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	ws.echo(t, "hello through the tunnel")
	testkit.Eventually(t, "the tunnel counted as a request in flight", func() bool {
		return h.metric(`meridian_forward_http_active_requests{listener="web"}`) == 1
	})

	// A keep-alive connection, used once before the reload.
	keep := dialRaw(t, h.addr("web"))
	get := func(path string) *http.Response {
		t.Helper()
		io.WriteString(keep, "GET "+path+" HTTP/1.1\r\nHost: app.test\r\n\r\n")
		r, err := http.ReadResponse(keep.r, nil)
		if err != nil {
			t.Fatalf("GET %s on the kept connection: %v", path, err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r
	}
	if r := get("/page"); r.Header.Get("X-Backend") != "a" {
		t.Fatalf("before the reload /page went to %q", r.Header.Get("X-Backend"))
	}

	// The reload: pool a leaves, the default and /ws go to b.
	h.reload(httpPool("b", "", b) + listenerTOML("web", "http", "b", `[[listener.route]]
name = "ws"
path_prefix = "/ws"
pool = "b"`))
	ws.echo(t, "still here after the reload")
	if r := get("/page"); r.Header.Get("X-Backend") != "b" {
		t.Errorf("after the reload /page on the kept connection went to %q, want b", r.Header.Get("X-Backend"))
	}
	ws2 := dialRaw(t, h.addr("web"))
	if resp := ws2.upgrade(t, "app.test", "/ws/chat"); resp.Header.Get("X-Backend") != "b" {
		t.Errorf("a new tunnel after the reload went to %q", resp.Header.Get("X-Backend"))
	}
	ws2.echo(t, "new tunnel")
	ws.echo(t, "old tunnel, old backend")
}

// A draining backend takes no new requests; its upgraded tunnel carries
// on until drain_timeout, then closes.
func TestUpgradeDrainTimeout(t *testing.T) {
	t.Parallel()
	a, b := startHTTPBackend(t, "a"), startHTTPBackend(t, "b")
	h := startForwarder(t, httpPool("web", `balance = "round_robin"
drain_timeout = "300ms"`, a, b)+listenerTOML("web", "http", "web", ""))
	ws := dialRaw(t, h.addr("web"))
	if resp := ws.upgrade(t, "app.test", "/ws"); resp.Header.Get("X-Backend") != "a" {
		t.Fatalf("the tunnel went to %q, want a (round robin)", resp.Header.Get("X-Backend"))
	}
	const drainTimeout = 300 * time.Millisecond
	drained := time.Now()
	if code, _ := h.request("POST", "/api/v1/pools/web/backends/"+a.addr+"/drain", true); code != 200 {
		t.Fatal("drain failed")
	}
	ws.echo(t, "draining but open")
	c := httpClient()
	for range 5 {
		if r := send(t, c, "GET", h.url("web")+"/", "", "", nil); r.seen.Backend != "b" {
			t.Fatalf("a request went to %q while a drains", r.seen.Backend)
		}
	}
	// Closed by the drain timeout: not before it, and not by the read
	// deadline a few seconds after it.
	ws.SetReadDeadline(drained.Add(drainTimeout + 3*time.Second))
	_, err := ws.r.ReadByte()
	switch took := time.Since(drained); {
	case err == nil:
		t.Error("the tunnel sent data instead of closing at the drain timeout")
	case isTimeout(err):
		t.Errorf("the tunnel was still open %v after the drain began, past its timeout of %v", took, drainTimeout)
	case took < drainTimeout:
		t.Errorf("the tunnel was closed %v after the drain began, before its timeout of %v: %v", took, drainTimeout, err)
	}
	testkit.Eventually(t, "the tunnel is no longer in flight", func() bool {
		return h.metric(`meridian_forward_http_active_requests{listener="web"}`) == 0
	})
}

// Limits against clients: headers past max_header_bytes (net/http allows
// 4 kB of slack over it) are refused 431,
// a body past max_body_bytes 413, and a client that sends its headers too
// slowly is cut off after read_header_timeout.
func TestHTTPClientLimits(t *testing.T) {
	t.Parallel()
	b := startHTTPBackend(t, "b")
	h := startForwarder(t, httpPool("b", "", b)+listenerTOML("web", "http", "b", `max_header_bytes = 4096
max_body_bytes = 1000
read_header_timeout = "200ms"`))
	c := httpClient()
	if r := send(t, c, "GET", h.url("web")+"/", "", "", map[string]string{"X-Big": strings.Repeat("x", 10000)}); r.code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("10 kB of headers: %d, want 431", r.code)
	}
	if r := send(t, c, "POST", h.url("web")+"/", "", strings.Repeat("y", 1001), nil); r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("1001-byte body: %d, want 413", r.code)
	}
	if r := send(t, c, "POST", h.url("web")+"/", "", strings.Repeat("y", 1000), nil); r.code != http.StatusOK || len(r.seen.Body) != 1000 {
		t.Errorf("1000-byte body: %d, %d bytes through", r.code, len(r.seen.Body))
	}
	// A chunked body past the limit, whose length is not announced.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(strings.Repeat("z", 1500)))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", h.url("web")+"/", pr)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked 1500 bytes: %v %v, want 413", resp, err)
	} else {
		resp.Body.Close()
	}
	if v := h.backend("b", b.addr); v.HTTPErrors != 0 {
		t.Errorf("the client's oversized body counted against the backend: %d errors", v.HTTPErrors)
	}
	slow := dialRaw(t, h.addr("web"))
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\n")
	start := time.Now()
	slow.SetReadDeadline(time.Now().Add(waitFor))
	io.Copy(io.Discard, slow.r) // until the forwarder closes it
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a slow client was held %v", d)
	}
}

// HTTP/2 without TLS, with h2c = true.
func TestH2C(t *testing.T) {
	t.Parallel()
	b := startHTTPBackend(t, "b")
	h := startForwarder(t, httpPool("b", "", b)+listenerTOML("web", "http", "b", "h2c = true"))
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	c := &http.Client{Timeout: ioTimeout, Transport: &http.Transport{Protocols: &protos}}
	resp, err := c.Get(h.url("web") + "/h2c")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || resp.Header.Get("X-Backend") != "b" {
		t.Errorf("h2c: %s from %q", resp.Proto, resp.Header.Get("X-Backend"))
	}
}

// Shutdown: the listener stops taking connections, requests in flight
// finish, and an upgraded tunnel carries on until the pool's drain
// timeout, which closes it, well before the shutdown's deadline.
func TestHTTPShutdown(t *testing.T) {
	t.Parallel()
	b := startHTTPBackend(t, "b")
	b.delay.Store(int64(200 * time.Millisecond))
	const drainTimeout = 2 * time.Second
	h := startForwarder(t, httpPool("b", `drain_timeout = "2s"`, b)+listenerTOML("web", "http", "b", ""))
	addr := h.addr("web")
	ws := dialRaw(t, addr)
	if resp := ws.upgrade(t, "app.test", "/ws"); resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	ws.echo(t, "before the shutdown")
	done := make(chan reply, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+addr+"/slow", nil)
		resp, err := httpClient().Do(req)
		if err != nil {
			done <- reply{code: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		done <- reply{code: resp.StatusCode, body: string(body)}
	}()
	testkit.Eventually(t, "the tunnel and the slow request in flight", func() bool {
		return h.metric(`meridian_forward_http_active_requests{listener="web"}`) == 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- h.f.Shutdown(ctx) }()
	if r := <-done; r.code != http.StatusOK {
		t.Errorf("the request in flight during shutdown: %d %s", r.code, r.body)
	}
	ws.echo(t, "while the shutdown drains")
	// Closed by the drain timeout: not before it, and not by the
	// shutdown's deadline (5s) or the read deadline before that.
	ws.SetReadDeadline(start.Add(drainTimeout + 2*time.Second))
	_, err := ws.r.ReadByte()
	switch took := time.Since(start); {
	case err == nil:
		t.Error("the tunnel sent data instead of closing at the drain timeout")
	case isTimeout(err):
		t.Errorf("the tunnel was still open %v into the shutdown, past the drain timeout of %v", took, drainTimeout)
	case took < drainTimeout:
		t.Errorf("the tunnel was closed %v into the shutdown, before the drain timeout of %v: %v", took, drainTimeout, err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, ioTimeout); err == nil {
		c.Close()
		t.Error("the listener still accepts after shutdown")
	}
}
