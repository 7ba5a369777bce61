package forward

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/gslb/forward/upstream"
	"github.com/meridian-gslb/meridian/internal/testkit"
)

// Connections spread over the backends, each proxied both ways, and the
// counts show up in the metrics and the admin API.
func TestTCPProxyRoundRobin(t *testing.T) {
	t.Parallel()
	a := startTCPBackend(t, "a", "", named("a"))
	b := startTCPBackend(t, "b", "", named("b"))
	c := startTCPBackend(t, "c", "", named("c"))
	h := startForwarder(t, uncheckedPool("web", "", a.addr, b.addr, c.addr)+
		listenerTOML("web", "tcp", "web", ""))
	seen := map[string]int{}
	for range 6 {
		cl := dial(t, h.addr("web"))
		name := cl.line()
		cl.echo("hello " + name)
		cl.Close()
		seen[name]++
	}
	if seen["a"] != 2 || seen["b"] != 2 || seen["c"] != 2 {
		t.Errorf("connections per backend = %v, want 2 each", seen)
	}
	series := fmt.Sprintf(`{backend=%q,pool="web"}`, a.addr)
	testkit.Eventually(t, "the closed connections counted", func() bool {
		return h.metric("meridian_forward_backend_active_connections"+series) == 0
	})
	if got := h.metric("meridian_forward_backend_connections_total" + series); got != 2 {
		t.Errorf("connections_total = %v, want 2", got)
	}
	// Each connection sent "hello a" and got "a\n" and "hello a" back.
	if got := h.metric("meridian_forward_backend_sent_bytes_total" + series); got != 14 {
		t.Errorf("sent bytes = %v, want 14", got)
	}
	if got := h.metric("meridian_forward_backend_received_bytes_total" + series); got != 18 {
		t.Errorf("received bytes = %v, want 18", got)
	}
	if v := h.backend("web", a.addr); v.State != "up" || v.Connections != 2 || !v.Available {
		t.Errorf("admin view of a = %+v", v)
	}
	if got := h.metric(`meridian_forward_listener_connections_total{listener="web",protocol="tcp"}`); got != 6 {
		t.Errorf("listener connections = %v, want 6", got)
	}
}

// A backend that stops gets no new connection: the connect failure is
// retried on another backend at once, so no client sees it, and the
// checks then take the backend out and show the region's capacity drop.
// When it comes back, it rejoins by itself.
func TestStoppedBackendMovesConnectionsElsewhere(t *testing.T) {
	t.Parallel()
	a := startTCPBackend(t, "a", "", named("a"))
	b := startTCPBackend(t, "b", "", named("b"))
	h := startForwarder(t, pool("web", `min_healthy = 2
[pool.check]
type = "tcp"
interval = "50ms"
timeout = "40ms"
fall = 2
rise = 2
[pool.outlier]
consecutive_failures = 0`, a.addr, b.addr)+listenerTOML("web", "tcp", "web", ""))

	if code, _ := h.request("GET", "/health/web", false); code != http.StatusOK {
		t.Fatalf("capacity with both up = %d, want 200", code)
	}
	b.stop()
	for i := range 10 {
		if name := connectName(t, h.addr("web")); name != "a" {
			t.Fatalf("connection %d after b stopped went to %q, want a", i, name)
		}
	}
	testkit.Eventually(t, "checks mark b down", func() bool { return h.backend("web", b.addr).State == "down" })
	if code, body := h.request("GET", "/health/web", false); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, `"healthy": 1`) {
		t.Errorf("capacity with one of min_healthy 2 = %d %s, want 503", code, body)
	}
	if got := h.metric(fmt.Sprintf(`meridian_forward_backend_health_transitions_total{backend=%q,pool="web",to="down"}`, b.addr)); got != 1 {
		t.Errorf("transitions to down = %v, want 1", got)
	}
	if !h.logged("backend down") {
		t.Error("no \"backend down\" log")
	}

	b.restart()
	testkit.Eventually(t, "b back in rotation", func() bool { return h.backend("web", b.addr).State == "up" })
	if code, _ := h.request("GET", "/health/web", false); code != http.StatusOK {
		t.Errorf("capacity with both back = %d, want 200", code)
	}
	seen := map[string]bool{}
	for range 4 {
		seen[connectName(t, h.addr("web"))] = true
	}
	if !seen["b"] {
		t.Errorf("b back up but got no connection: %v", seen)
	}
}

// A drained backend gets no new connection, while one it already has
// keeps working until drain_timeout, then is closed.
func TestDrainKeepsEstablishedUntilTimeout(t *testing.T) {
	t.Parallel()
	a := startTCPBackend(t, "a", "", named("a"))
	b := startTCPBackend(t, "b", "", named("b"))
	h := startForwarder(t, uncheckedPool("web", "drain_timeout = \"2s\"", a.addr, b.addr)+
		listenerTOML("web", "tcp", "web", ""))

	var onB *client
	for range 2 {
		c := dial(t, h.addr("web"))
		if c.line() == "b" {
			onB = c
		}
	}
	if onB == nil {
		t.Fatal("no connection reached b")
	}
	path := "/api/v1/pools/web/backends/" + b.addr + "/drain"
	if code, _ := h.request("POST", path, false); code != http.StatusUnauthorized {
		t.Errorf("drain without the token = %d, want 401", code)
	}
	// Read before the request, so that the drain's timer surely starts
	// after it.
	drained := time.Now()
	code, body := h.request("POST", path, true)
	if code != http.StatusOK || !strings.Contains(body, `"state": "draining"`) {
		t.Fatalf("drain = %d %s", code, body)
	}
	onB.echo("still here")
	for i := range 6 {
		if name := connectName(t, h.addr("web")); name != "a" {
			t.Fatalf("new connection %d went to %q while b drains", i, name)
		}
	}
	onB.echo("and still here")
	if !onB.closed() {
		t.Fatal("the established connection outlived drain_timeout")
	}
	if held := time.Since(drained); held < 2*time.Second {
		t.Errorf("closed %v after the drain, before drain_timeout", held)
	}
	if got := h.metric(fmt.Sprintf(`meridian_forward_backend_draining{backend=%q,pool="web"}`, b.addr)); got != 1 {
		t.Errorf("draining = %v, want 1", got)
	}

	if code, _ := h.request("DELETE", path, true); code != http.StatusOK {
		t.Fatalf("undrain = %d", code)
	}
	seen := map[string]bool{}
	for range 4 {
		seen[connectName(t, h.addr("web"))] = true
	}
	if !seen["b"] {
		t.Errorf("undrained b got no connection: %v", seen)
	}
	if code, _ := h.request("POST", "/api/v1/pools/web/backends/10.9.9.9:1/drain", true); code != http.StatusNotFound {
		t.Errorf("drain of an unknown backend = %d, want 404", code)
	}
}

// Passive health: a backend whose connections fail is ejected after
// consecutive_failures, and comes back by itself after its ejection time,
// with no active check at all.
func TestOutlierEjectionAndReturn(t *testing.T) {
	t.Parallel()
	a := startTCPBackend(t, "a", "", named("a"))
	deadAddr := freeAddr(t)
	h := startForwarder(t, pool("web", `connect_attempts = 1
[pool.check]
type = "none"
[pool.outlier]
consecutive_failures = 2
base_ejection_time = "2s"
max_ejection_percent = 50`, a.addr, deadAddr)+listenerTOML("web", "tcp", "web", ""))

	// Round robin alternates; with one attempt, a client whose
	// connection went to the dead backend sees it closed.
	failed := 0
	for range 4 {
		if connectName(t, h.addr("web")) == "" {
			failed++
		}
	}
	if failed != 2 {
		t.Fatalf("%d of 4 connections failed, want the 2 sent to the dead backend", failed)
	}
	series := fmt.Sprintf(`{backend=%q,pool="web"}`, deadAddr)
	if got := h.metric("meridian_forward_backend_ejected" + series); got != 1 {
		t.Fatalf("ejected = %v, want 1", got)
	}
	if v := h.backend("web", deadAddr); v.State != "ejected" || v.EjectedUntil == nil || v.ConnectErrors != 2 {
		t.Errorf("admin view = %+v, want ejected after 2 connect errors", v)
	}
	for i := range 6 {
		if name := connectName(t, h.addr("web")); name != "a" {
			t.Fatalf("connection %d while ejected went to %q", i, name)
		}
	}

	// The server comes up; once the ejection ends it gets traffic again.
	startTCPBackend(t, "b", deadAddr, named("b"))
	testkit.Eventually(t, "the ejected backend serves again", func() bool { return connectName(t, h.addr("web")) == "b" })
	if !h.logged("backend ejected") || !h.logged("backend restored") {
		t.Errorf("missing the ejection and restoration logs")
	}
	if got := h.metric("meridian_forward_backend_ejections_total" + series); got != 1 {
		t.Errorf("ejections_total = %v, want 1", got)
	}
}

// Each side's FIN reaches the other while the other direction carries on.
func TestHalfClose(t *testing.T) {
	t.Parallel()
	// The client finishes first: the backend reads to EOF, then answers.
	counter := startTCPBackend(t, "counter", "", func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d bytes", n)
	})
	// The backend finishes first: it greets, half-closes, then reads.
	heard := make(chan string, 1)
	greeter := startTCPBackend(t, "greeter", "", func(c net.Conn) {
		io.WriteString(c, "hello, then silence")
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		heard <- string(b)
	})
	h := startForwarder(t, uncheckedPool("count", "", counter.addr)+
		uncheckedPool("greet", "", greeter.addr)+
		listenerTOML("count", "tcp", "count", "")+listenerTOML("greet", "tcp", "greet", ""))

	c := dial(t, h.addr("count"))
	payload := strings.Repeat("x", 256<<10)
	if _, err := io.WriteString(c, payload); err != nil {
		t.Fatal(err)
	}
	c.Conn.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c.r)
	if err != nil || string(got) != fmt.Sprintf("got %d bytes", len(payload)) {
		t.Errorf("after half-closing: %q, %v", got, err)
	}

	g := dial(t, h.addr("greet"))
	greeting, err := io.ReadAll(g.r) // to the backend's FIN
	if err != nil || string(greeting) != "hello, then silence" {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	io.WriteString(g, "heard you")
	g.Conn.(*net.TCPConn).CloseWrite()
	select {
	case s := <-heard:
		if s != "heard you" {
			t.Errorf("backend heard %q after its half-close, want %q", s, "heard you")
		}
	case <-time.After(waitFor):
		t.Fatal("the backend never got the client's bytes after its own half-close")
	}
}

// A connection with no bytes either way for idle_timeout is closed; one
// that keeps talking is not.
func TestIdleTimeout(t *testing.T) {
	a := startTCPBackend(t, "a", "", named("a"))
	h := startForwarder(t, uncheckedPool("web", "", a.addr)+
		listenerTOML("web", "tcp", "web", `idle_timeout = "600ms"`))

	busy := dial(t, h.addr("web"))
	busy.line()
	quiet := dial(t, h.addr("web"))
	quiet.line()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < 1500*time.Millisecond {
		<-tick.C
		busy.echo("ping")
	}
	if !quiet.closed() {
		t.Fatal("the quiet connection was not closed")
	}
	busy.echo("still open after 2.5 idle timeouts of talking")
}

// PROXY protocol to backends: the header tells the backend the client's
// address and the one it connected to, and the stream follows intact.
func TestProxyProtocolToBackends(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"v1", "v2"} {
		t.Run(version, func(t *testing.T) {
			headers := make(chan *proxyproto.Header, 1)
			be := startTCPBackend(t, "pp", "", func(c net.Conn) {
				br := bufio.NewReader(c)
				hdr, err := proxyproto.Read(br)
				if err != nil {
					return
				}
				headers <- hdr
				io.Copy(c, br)
			})
			h := startForwarder(t, pool("web", fmt.Sprintf("proxy_protocol = %q\n[pool.check]\ntype = \"none\"", version), be.addr)+
				listenerTOML("web", "tcp", "web", ""))
			c := dial(t, h.addr("web"))
			c.echo("after the header")
			hdr := <-headers
			wantVersion := byte(1)
			if version == "v2" {
				wantVersion = 2
			}
			if hdr.Version != wantVersion || !hdr.Command.IsProxy() {
				t.Errorf("header version %d command %v, want %d PROXY", hdr.Version, hdr.Command, wantVersion)
			}
			src, dst, ok := hdr.TCPAddrs()
			if !ok || src.String() != c.LocalAddr().String() || dst.String() != h.addr("web") {
				t.Errorf("header says %v -> %v, want %s -> %s", src, dst, c.LocalAddr(), h.addr("web"))
			}
		})
	}
}

// PROXY protocol from an upstream load balancer: the client it names is
// the one passed on, the bytes that came with the header are not lost, and
// a connection without a header is refused.
func TestAcceptProxyProtocol(t *testing.T) {
	t.Parallel()
	headers := make(chan *proxyproto.Header, 2)
	be := startTCPBackend(t, "pp", "", func(c net.Conn) {
		br := bufio.NewReader(c)
		hdr, err := proxyproto.Read(br)
		if err != nil {
			return
		}
		headers <- hdr
		io.Copy(c, br)
	})
	h := startForwarder(t, uncheckedPool("web", "proxy_protocol = \"v2\"", be.addr)+
		listenerTOML("web", "tcp", "web", "accept_proxy_protocol = true\nhandshake_timeout = \"2s\""))

	for _, tt := range []struct {
		name   string
		header string
	}{
		{"v1", "PROXY TCP4 203.0.113.7 192.0.2.1 4242 443\r\n"},
		{"v2", string(mustFormat(t, proxyproto.HeaderProxyFromAddrs(2,
			&net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 4242}, &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 443})))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, h.addr("web"))
			// Header and data in one write: they arrive together.
			io.WriteString(c, tt.header+"first bytes")
			got := make([]byte, len("first bytes"))
			if _, err := io.ReadFull(c.r, got); err != nil || string(got) != "first bytes" {
				t.Fatalf("echo %q, %v", got, err)
			}
			hdr := <-headers
			src, dst, _ := hdr.TCPAddrs()
			if src.String() != "203.0.113.7:4242" || dst.String() != "192.0.2.1:443" {
				t.Errorf("backend told %v -> %v, want the upstream's 203.0.113.7:4242 -> 192.0.2.1:443", src, dst)
			}
		})
	}
	c := dial(t, h.addr("web"))
	io.WriteString(c, "no header here\r\n")
	if !c.closed() {
		t.Error("a connection without a PROXY header was proxied")
	}
	if got := h.metric(`meridian_forward_listener_rejected_total{listener="web",protocol="tcp",reason="proxy_protocol"}`); got != 1 {
		t.Errorf("rejected for proxy_protocol = %v, want 1", got)
	}
}

func mustFormat(t *testing.T, h *proxyproto.Header) []byte {
	t.Helper()
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TLS passthrough: the forwarder reads the server name from the
// ClientHello and routes by it; the backend terminates TLS.
func TestSNIRouting(t *testing.T) {
	t.Parallel()
	cert := testkit.SelfSigned(t, "example.test", "*.example.test", "*.apps.example.test")
	tlsBackend := func(name string) *tcpBackend {
		return startTCPBackend(t, name, "", func(c net.Conn) {
			s := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
			if s.Handshake() != nil {
				return
			}
			io.WriteString(s, name+"\n")
			io.Copy(s, s)
		})
	}
	api, apps, web := tlsBackend("api"), tlsBackend("apps"), tlsBackend("web")
	h := startForwarder(t, uncheckedPool("api", "", api.addr)+
		uncheckedPool("apps", "", apps.addr)+
		uncheckedPool("web", "", web.addr)+
		listenerTOML("tls", "tls", "web", `[[listener.route]]
sni = ["api.example.test"]
pool = "api"
[[listener.route]]
sni = ["*.apps.example.test"]
pool = "apps"`))

	tests := []struct{ serverName, want string }{
		{"api.example.test", "api"},
		{"API.Example.Test", "api"},
		{"shop.apps.example.test", "apps"},
		{"a.b.apps.example.test", "web"}, // a wildcard is one label
		{"example.test", "web"},
		{"", "web"}, // no SNI: the listener's pool
	}
	for _, tt := range tests {
		t.Run(tt.serverName, func(t *testing.T) {
			raw, err := net.DialTimeout("tcp", h.addr("tls"), ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(waitFor))
			c := tls.Client(raw, &tls.Config{ServerName: tt.serverName, InsecureSkipVerify: true})
			r := bufio.NewReader(c)
			got, err := r.ReadString('\n')
			if err != nil || strings.TrimSpace(got) != tt.want {
				t.Fatalf("reached %q (%v), want %s", got, err, tt.want)
			}
			io.WriteString(c, "over TLS end to end")
			buf := make([]byte, len("over TLS end to end"))
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Fatal(err)
			}
		})
	}
	c := dial(t, h.addr("tls"))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
	if !c.closed() {
		t.Error("plain HTTP on the TLS listener was proxied")
	}
	if got := h.metric(`meridian_forward_listener_rejected_total{listener="tls",protocol="tls",reason="client_hello"}`); got != 1 {
		t.Errorf("rejected for client_hello = %v, want 1", got)
	}
}

// listener.max_connections: the connection past the cap is closed at once;
// once one ends, a new one is served.
func TestListenerMaxConnections(t *testing.T) {
	t.Parallel()
	a := startTCPBackend(t, "a", "", named("a"))
	h := startForwarder(t, uncheckedPool("web", "", a.addr)+
		listenerTOML("web", "tcp", "web", "max_connections = 1"))
	first := dial(t, h.addr("web"))
	if first.line() != "a" {
		t.Fatal("first connection not served")
	}
	second := dial(t, h.addr("web"))
	if !second.closed() {
		t.Fatal("the connection past max_connections was served")
	}
	if got := h.metric(`meridian_forward_listener_rejected_total{listener="web",protocol="tcp",reason="max_connections"}`); got != 1 {
		t.Errorf("rejected for max_connections = %v, want 1", got)
	}
	first.Close()
	testkit.Eventually(t, "a new connection served once the first ended", func() bool { return connectName(t, h.addr("web")) == "a" })
}

// The capacity endpoint on its own listener serves GSLB probes and nothing
// of the admin API.
func TestHealthListener(t *testing.T) {
	t.Parallel()
	a := startTCPBackend(t, "a", "", named("a"))
	h := startForwarder(t, "[health]\nlisten = \"127.0.0.1:0\"\n\n"+uncheckedPool("web", "", a.addr)+
		listenerTOML("web", "tcp", "web", ""))
	addrs := h.f.HTTPAddrs()
	if len(addrs) != 2 {
		t.Fatalf("HTTP listeners = %v, want admin and health", addrs)
	}
	get := func(path string) int {
		resp, err := (&http.Client{Timeout: ioTimeout}).Get("http://" + addrs[1].String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/health/web"); code != http.StatusOK {
		t.Errorf("/health/web = %d, want 200", code)
	}
	if code := get("/health/nope"); code != http.StatusNotFound {
		t.Errorf("/health/nope = %d, want 404", code)
	}
	if code := get("/api/v1/pools"); code != http.StatusNotFound {
		t.Errorf("/api/v1/pools on the health listener = %d, want 404", code)
	}
}

// A reload keeps established connections, the health and drains of
// unchanged backends, and drains the removed ones; a bad configuration
// changes nothing.
func TestReload(t *testing.T) {
	t.Parallel()
	a := startTCPBackend(t, "a", "", named("a"))
	b := startTCPBackend(t, "b", "", named("b"))
	c := startTCPBackend(t, "c", "", named("c"))
	dead := freeAddr(t)
	checks := "[pool.check]\ntype = \"tcp\"\ninterval = \"50ms\"\ntimeout = \"40ms\"\nfall = 1\nrise = 1\n[pool.outlier]\nconsecutive_failures = 0"
	before := pool("web", "drain_timeout = \"2s\"\n"+checks, a.addr, b.addr, dead) + listenerTOML("web", "tcp", "web", "")
	h := startForwarder(t, before)
	testkit.Eventually(t, "the dead backend checked down", func() bool { return h.backend("web", dead).State == "down" })
	if code, _ := h.request("POST", "/api/v1/pools/web/backends/"+a.addr+"/drain", true); code != http.StatusOK {
		t.Fatal("drain a")
	}
	onB := dial(t, h.addr("web"))
	if name := onB.line(); name != "b" {
		t.Fatalf("with a drained and the third down, went to %q", name)
	}

	// b removed, c added; a and the dead backend unchanged.
	after := pool("web", "drain_timeout = \"2s\"\n"+checks, a.addr, dead, c.addr) + listenerTOML("web", "tcp", "web", "")
	h.reload(after)
	if v := h.backend("web", dead); v.State != "down" {
		t.Errorf("the dead backend is %q after the reload, want its health kept (down)", v.State)
	}
	if v := h.backend("web", a.addr); v.State != "draining" {
		t.Errorf("a is %q after the reload, want the admin's drain kept", v.State)
	}
	for i := range 4 {
		if name := connectName(t, h.addr("web")); name != "c" {
			t.Fatalf("new connection %d after the reload went to %q, want c", i, name)
		}
	}
	onB.echo("b is gone from the configuration, not from this connection")
	if !onB.closed() {
		t.Error("the removed backend's connection outlived its drain_timeout")
	}
	if !h.logged("backend removed") || !h.logged("backend added") {
		t.Error("missing the added and removed logs")
	}

	// A configuration that does not bind changes nothing.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	bad := after + fmt.Sprintf("[[listener]]\nname = \"second\"\nlisten = %q\npool = \"web\"\n", taken.Addr())
	if err := h.f.Reload(h.write(bad)); err == nil {
		t.Fatal("a reload onto an address in use succeeded")
	}
	if h.f.Addr("second") != nil {
		t.Error("the failed reload left a listener behind")
	}
	if name := connectName(t, h.addr("web")); name != "c" {
		t.Errorf("after the failed reload, went to %q, want c", name)
	}
}

// Shutdown: new connections are refused and the capacity endpoint says
// 503 at once; established connections finish, up to drain_timeout.
func TestShutdownDrains(t *testing.T) {
	t.Parallel()
	a := startTCPBackend(t, "a", "", named("a"))
	h := startForwarder(t, uncheckedPool("web", "drain_timeout = \"2s\"", a.addr)+
		listenerTOML("web", "tcp", "web", ""))
	listen := h.addr("web")
	c := dial(t, listen)
	c.line()

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		done <- h.f.Shutdown(ctx)
	}()
	testkit.Eventually(t, "the listener closed", func() bool {
		conn, err := net.DialTimeout("tcp", listen, ioTimeout)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	if code, _ := h.request("GET", "/health/web", false); code != http.StatusServiceUnavailable {
		t.Errorf("capacity while shutting down = %d, want 503", code)
	}
	c.echo("finishing my business")
	if !c.closed() {
		t.Error("the established connection outlived drain_timeout")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown = %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Shutdown did not return")
	}
}

// udpBackend answers each datagram with its name and the datagram.
type udpBackend struct {
	name string
	conn *net.UDPConn
	addr string
}

func startUDPBackend(t *testing.T, name string) *udpBackend {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b := &udpBackend{name: name, conn: conn, addr: conn.LocalAddr().String()}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			conn.WriteToUDPAddrPort(append([]byte(name+":"), buf[:n]...), from)
		}
	})
	t.Cleanup(func() {
		conn.Close()
		wg.Wait()
	})
	return b
}

// udpClient is a client socket; ask sends a datagram and returns the
// reply and where it came from, or "" when none came within wait.
type udpClient struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func newUDPClient(t *testing.T, to string) *udpClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	addr, _ := net.ResolveUDPAddr("udp", to)
	return &udpClient{t: t, conn: conn, to: addr}
}

func (c *udpClient) ask(msg string, wait time.Duration) (reply, from string) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP([]byte(msg), c.to); err != nil {
		c.t.Fatal(err)
	}
	c.conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 2048)
	n, addr, err := c.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return "", ""
	}
	return string(buf[:n]), addr.String()
}

// UDP: a client's datagrams stay on one backend, replies come from the
// listening address, flows expire when idle and the table has a cap.
func TestUDPFlows(t *testing.T) {
	t.Parallel()
	a, b := startUDPBackend(t, "a"), startUDPBackend(t, "b")
	h := startForwarder(t, uncheckedPool("dns", "", a.addr, b.addr)+
		listenerTOML("dns", "udp", "dns", "max_flows = 2\nidle_timeout = \"1s\""))
	listen := h.addr("dns")

	c1, c2, c3 := newUDPClient(t, listen), newUDPClient(t, listen), newUDPClient(t, listen)
	first, from := c1.ask("q1", ioTimeout)
	if from != listen {
		t.Errorf("reply came from %s, want the listening address %s", from, listen)
	}
	backend1, _, _ := strings.Cut(first, ":")
	for i := range 5 {
		if got, _ := c1.ask(fmt.Sprintf("q%d", i+2), ioTimeout); !strings.HasPrefix(got, backend1+":") {
			t.Fatalf("datagram %d of one client answered %q, want its flow's backend %s", i+2, got, backend1)
		}
	}
	second, _ := c2.ask("x", ioTimeout)
	if backend2, _, _ := strings.Cut(second, ":"); backend2 == backend1 || second != backend2+":x" {
		t.Errorf("second client answered %q by the first's backend %s, want the other one", second, backend1)
	}
	// The table is full: a third client is dropped, and counted.
	if got, _ := c3.ask("dropped", 100*time.Millisecond); got != "" {
		t.Errorf("third client got %q past max_flows 2", got)
	}
	if got := h.metric(`meridian_forward_listener_rejected_total{listener="dns",protocol="udp",reason="max_flows"}`); got != 1 {
		t.Errorf("rejected for max_flows = %v, want 1", got)
	}
	testkit.Eventually(t, "idle flows expire", func() bool {
		return h.metric(`meridian_forward_listener_active_connections{listener="dns",protocol="udp"}`) == 0
	})
	if got, _ := c3.ask("now", ioTimeout); !strings.HasSuffix(got, ":now") {
		t.Errorf("third client after expiry got %q", got)
	}
	if got := h.metric(`meridian_forward_listener_connections_total{listener="dns",protocol="udp"}`); got != 3 {
		t.Errorf("flows started = %v, want 3", got)
	}
}

// A UDP backend that goes away answers with ICMP port unreachable: its flow
// ends, the error counts against it, and the client's next datagram goes
// to another backend.
func TestUDPBackendGone(t *testing.T) {
	t.Parallel()
	a, b := startUDPBackend(t, "a"), startUDPBackend(t, "b")
	h := startForwarder(t, uncheckedPool("dns", "", a.addr, b.addr)+
		listenerTOML("dns", "udp", "dns", ""))
	c := newUDPClient(t, h.addr("dns"))
	first, _ := c.ask("hello", ioTimeout)
	gone, other := a, b
	if strings.HasPrefix(first, "b:") {
		gone, other = b, a
	}
	gone.conn.Close()
	testkit.Eventually(t, "the client's datagrams reach the other backend", func() bool {
		got, _ := c.ask("again", 100*time.Millisecond)
		return strings.HasPrefix(got, other.name+":")
	})
	if got := h.metric(fmt.Sprintf(`meridian_forward_backend_connect_errors_total{backend=%q,pool="dns"}`, gone.addr)); got < 1 {
		t.Errorf("connect errors of the gone backend = %v, want at least 1", got)
	}
}

// BenchmarkTCPRoundTrip is one request and its answer through the proxy on
// an established connection, and one on a new connection each time, with
// a direct connection to the backend as the baseline.
func BenchmarkTCPRoundTrip(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	cfg := uncheckedPool("bench", "", ln.Addr().String()) + listenerTOML("bench", "tcp", "bench", "")
	fw, addr := benchForwarder(b, cfg)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		fw.Shutdown(ctx)
	}()

	msg := make([]byte, 64)
	buf := make([]byte, 64)
	roundTrip := func(c net.Conn) {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	for _, target := range []struct{ name, addr string }{{"direct", ln.Addr().String()}, {"proxied", addr}} {
		b.Run(target.name+"/established", func(b *testing.B) {
			c, err := net.Dial("tcp", target.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ReportAllocs()
			for b.Loop() {
				roundTrip(c)
			}
		})
		b.Run(target.name+"/new_connection", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, err := net.Dial("tcp", target.addr)
				if err != nil {
					b.Fatal(err)
				}
				roundTrip(c)
				c.Close()
			}
		})
	}
}

// benchForwarder starts a forwarder on src and returns it with the address
// of its listener "bench".
func benchForwarder(b *testing.B, src string) (*Forwarder, string) {
	b.Helper()
	cfg, err := config.ParseForward("bench.toml", []byte("[admin]\nlisten = \"off\"\n"+src))
	if err != nil {
		b.Fatal(err)
	}
	f := New(Options{})
	if err := f.Start(cfg); err != nil {
		b.Fatal(err)
	}
	return f, f.Addr("bench").String()
}

// The pool's all_unhealthy setting, driven by real HTTP checks that
// match the body: when the checks of every backend fail (the backends
// still accept connections, as a degraded app does), refuse turns clients
// away and panic spreads them over all backends; both show in /metrics
// and the capacity endpoint.
func TestAllUnhealthy(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"refuse", "panic"} {
		t.Run(mode, func(t *testing.T) {
			var status sync.Map // check server -> body
			checkServer := func() string {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, _ := status.Load(r.Host)
					io.WriteString(w, body.(string))
				}))
				t.Cleanup(srv.Close)
				host := strings.TrimPrefix(srv.URL, "http://")
				status.Store(host, "status: ok")
				return host
			}
			a := startTCPBackend(t, "a", "", named("a"))
			b := startTCPBackend(t, "b", "", named("b"))
			ca, cb := checkServer(), checkServer()
			h := startForwarder(t, fmt.Sprintf(`[[pool]]
name = "web"
all_unhealthy = %q
[pool.check]
type = "http"
path = "/ready"
body = "status: ok"
interval = "50ms"
timeout = "40ms"
fall = 1
rise = 1
[[pool.backend]]
address = %q
check_address = %q
[[pool.backend]]
address = %q
check_address = %q
`, mode, a.addr, ca, b.addr, cb)+listenerTOML("web", "tcp", "web", ""))

			testkit.Eventually(t, "both checked up", func() bool {
				return h.backend("web", a.addr).LastCheck != nil && h.backend("web", b.addr).LastCheck != nil
			})
			if got := h.metric(`meridian_forward_pool_panic{pool="web"}`); got != 0 {
				t.Errorf("panic while healthy = %v", got)
			}
			status.Store(ca, "status: maintenance")
			status.Store(cb, "status: maintenance")
			testkit.Eventually(t, "both checked down", func() bool {
				return h.metric(`meridian_forward_pool_healthy_backends{pool="web"}`) == 0
			})
			if code, _ := h.request("GET", "/health/web", false); code != http.StatusServiceUnavailable {
				t.Errorf("capacity with none healthy = %d, want 503", code)
			}
			if v := h.backend("web", a.addr); v.LastCheck == nil || v.LastCheck.Reason != "body does not match" {
				t.Errorf("last check of a = %+v, want the body mismatch", v.LastCheck)
			}
			seen := map[string]int{}
			for range 4 {
				seen[connectName(t, h.addr("web"))]++
			}
			wantPanic := 0.0
			switch mode {
			case "refuse":
				if seen[""] != 4 {
					t.Errorf("refuse: connections went %v, want all refused", seen)
				}
				if got := h.metric(`meridian_forward_pool_refused_connections_total{pool="web"}`); got != 4 {
					t.Errorf("refused = %v, want 4", got)
				}
			case "panic":
				wantPanic = 1
				if seen["a"] != 2 || seen["b"] != 2 {
					t.Errorf("panic: connections went %v, want spread over both", seen)
				}
				if !h.logged("pool in panic mode: no healthy backend, spreading connections over every backend not draining") {
					t.Error("no panic mode log")
				}
			}
			if got := h.metric(`meridian_forward_pool_panic{pool="web"}`); got != wantPanic {
				t.Errorf("pool_panic = %v, want %v", got, wantPanic)
			}
		})
	}
}

// initial_state = "down": a new backend takes no traffic until its checks
// have passed rise times.
func TestInitialStateDown(t *testing.T) {
	a := startTCPBackend(t, "a", "", named("a"))
	h := startForwarder(t, pool("web", `initial_state = "down"
[pool.check]
type = "tcp"
interval = "1s"
rise = 2`, a.addr)+listenerTOML("web", "tcp", "web", ""))
	if v := h.backend("web", a.addr); v.Health != "down" || v.Available {
		t.Fatalf("new backend = %+v, want down until checked", v)
	}
	if name := connectName(t, h.addr("web")); name != "" {
		t.Errorf("connection reached %q before the backend's checks passed", name)
	}
	testkit.Eventually(t, "two checks pass", func() bool { return h.backend("web", a.addr).Health == "up" })
	if name := connectName(t, h.addr("web")); name != "a" {
		t.Errorf("after the checks, went to %q", name)
	}
}

// A UDP listener on the wildcard address answers from the address the
// client sent to.
func TestUDPWildcardRepliesFromDestination(t *testing.T) {
	t.Parallel()
	a := startUDPBackend(t, "a")
	h := startForwarder(t, uncheckedPool("dns", "", a.addr)+
		"[[listener]]\nname = \"dns\"\nprotocol = \"udp\"\nlisten = \"0.0.0.0:0\"\npool = \"dns\"\n")
	_, port, _ := net.SplitHostPort(h.addr("dns"))
	to := net.JoinHostPort("127.0.0.1", port)
	c := newUDPClient(t, to)
	got, from := c.ask("who", ioTimeout)
	if got != "a:who" || from != to {
		t.Errorf("reply %q from %s, want \"a:who\" from %s", got, from, to)
	}
}

// A backend drained (here by the file) past its drain_timeout, then
// removed, is forgotten at once: no timer is left to do it later.
func TestRemovedDrainedBackendForgotten(t *testing.T) {
	a := startTCPBackend(t, "a", "127.0.0.1:0", named("a"))
	b := startTCPBackend(t, "b", "127.0.0.1:0", named("b"))
	drained := strings.Replace(uncheckedPool("web", "drain_timeout = \"50ms\"", a.addr, b.addr),
		fmt.Sprintf("address = %q\n", a.addr), fmt.Sprintf("address = %q\ndrain = true\n", a.addr), 1)
	h := startForwarder(t, drained+listenerTOML("web", "tcp", "web", ""))
	id := upstream.BackendID("web", a.addr)
	testkit.Eventually(t, "the drain timed out", func() bool {
		return h.f.upstream.Backend(id).DrainExpired()
	})
	h.reload(uncheckedPool("web", "drain_timeout = \"50ms\"", b.addr) + listenerTOML("web", "tcp", "web", ""))
	testkit.Eventually(t, "the removed backend forgotten", func() bool {
		return h.f.upstream.Backend(id) == nil
	})
}
