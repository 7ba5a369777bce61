package forward

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// framingBackend answers by path: chunked, 204, 304, a header its
// Connection header names, or (anything else) what it saw, as JSON.
func framingBackend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Header().Set("Content-Type", "text/plain")
			for i := range 3 {
				fmt.Fprintf(w, "part %d\n", i)
				w.(http.Flusher).Flush()
			}
			return
		case "/big": // more than any buffer, with its length
			w.Header().Set("Content-Length", strconv.Itoa(1<<20))
			w.Write(bytes.Repeat([]byte("0123456789abcdef"), 1<<16))
			return
		case "/bigchunked":
			for i := range 16 {
				w.Write(bytes.Repeat([]byte{byte('a' + i)}, 64<<10))
				w.(http.Flusher).Flush()
			}
			return
		case "/bighead": // a head past the backend buffer's first size
			for i := range 40 {
				w.Header().Set(fmt.Sprintf("X-Pad-%d", i), strings.Repeat("p", 1000))
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/notmod":
			w.WriteHeader(http.StatusNotModified)
			return
		case "/hop":
			w.Header()["Connection"] = []string{"X-Secret", "X-Other"} // two lines
			w.Header().Set("X-Secret", "hop only")
			w.Header().Set("X-Other", "hop only too")
			w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Query: r.URL.RawQuery,
			Host: r.Host, Proto: r.Proto, Header: r.Header, Body: string(body),
		})
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// exchange sends raw request bytes on a new connection and reads the
// answers to them, one per method in methods.
func exchange(t *testing.T, addr, raw string, methods ...string) []*answer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*answer
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("%q: reading answer %d: %v", raw, len(out)+1, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%q: reading body %d: %v", raw, len(out)+1, err)
		}
		resp.Header.Del("Date")
		out = append(out, &answer{Status: resp.StatusCode, Header: resp.Header, Body: string(body), Close: resp.Close})
	}
	return out
}

// answer is what a client sees of a response, framing aside.
type answer struct {
	Status int
	Header http.Header
	Body   string
	Close  bool
}

// The fast path answers what net/http would: the same requests reach the
// backend (method, target, Host, headers), and the client gets the same
// status, headers and body, whatever the framing. The std listener has
// fast_path = false and serves the same routes through net/http.
func TestFastPathMatchesNetHTTP(t *testing.T) {
	backend := framingBackend(t)
	routes := `
response_headers = { X-Frame-Options = "DENY", Strict-Transport-Security = "max-age=60" }

[[listener.route]]
name = "v2"
path_prefix = "/v2/"
strip_prefix = "/v2"
pool = "web"

[[listener.route]]
name = "reports"
path_regexp = "^/reports/([0-9]+)$"
replace_path = "/r/$1 x"
pool = "web"

[[listener.route]]
name = "beta"
cookie = { beta = "yes" }
pool = "beta"

[[listener.route]]
name = "debug"
header = { X-Debug = "*" }
query = { trace = "1" }
pool = "beta"

[[listener.route]]
name = "nowhere"
path = "/nowhere"
pool = "dead"

[[listener.route]]
name = "stick"
path_prefix = "/stick"
pool = "stick"

[[listener.route]]
name = "by-header"
path_prefix = "/hdr"
pool = "by-header"
`
	h := startForwarderWith(t, func(dir string) {
		os.WriteFile(filepath.Join(dir, "sticky.key"), []byte(testStickyKey+"\n"), 0o600)
	}, uncheckedPool("web", "", backend)+
		uncheckedPool("stick", "[pool.sticky]\nmode = \"cookie\"\nkey_file = \"sticky.key\"\nmax_age = \"1h\"", backend)+
		uncheckedPool("by-header", "[pool.sticky]\nmode = \"header\"\nheader = \"X-Session\"", backend)+
		uncheckedPool("beta", "[pool.http]\nhost = \"beta.internal\"", backend)+
		uncheckedPool("dead", "", freeAddr(t))+
		listenerTOML("fast", "http", "web", routes)+
		listenerTOML("std", "http", "web", "fast_path = false\n"+routes))

	const host = "Host: www.example.test\r\n"
	cases := []struct {
		name    string
		raw     string // the request, before its Host header and empty line
		methods []string
	}{
		{"plain GET", "GET / HTTP/1.1\r\nUser-Agent: t/1\r\nAccept: */*\r\n", nil},
		{"escaped path and query", "GET /a%20b/c%2Fd?x=1&y=%2F&z HTTP/1.1\r\n", nil},
		{"sub-delims in the path", "GET /a!b'(c)*;d,e=f:g@h~ HTTP/1.1\r\n", nil},
		{"empty query", "GET /q? HTTP/1.1\r\n", nil},
		{"HEAD", "HEAD /head HTTP/1.1\r\n", []string{"HEAD"}},
		{"DELETE", "DELETE /thing HTTP/1.1\r\nContent-Length: 0\r\n", nil},
		{"OPTIONS", "OPTIONS /opt HTTP/1.1\r\n", nil},
		{"client forwarding headers replaced", "GET /xff HTTP/1.1\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\nForwarded: for=192.0.2.7\r\n", nil},
		{"hop-by-hop headers dropped", "GET /hbh HTTP/1.1\r\nKeep-Alive: 300\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\n", nil},
		{"repeated headers", "GET /rep HTTP/1.1\r\nX-Tag: a\r\nX-Tag: b\r\nx-lower: c\r\n", nil},
		{"Connection: close", "GET /close HTTP/1.1\r\nConnection: close\r\n", nil},
		{"strip_prefix", "GET /v2/users?id=7 HTTP/1.1\r\n", nil},
		{"replace_path by regexp", "GET /reports/42 HTTP/1.1\r\n", nil},
		{"cookie route and pool Host", "GET /c HTTP/1.1\r\nCookie: a=1; beta=yes\r\n", nil},
		{"header and query route", "GET /d?trace=1 HTTP/1.1\r\nX-Debug: on\r\n", nil},
		{"chunked answer", "GET /chunked HTTP/1.1\r\n", nil},
		{"204", "GET /empty HTTP/1.1\r\n", nil},
		{"304", "GET /notmod HTTP/1.1\r\n", nil},
		{"Connection-named and overridden answer headers", "GET /hop HTTP/1.1\r\n", nil},
		{"500 passed on", "GET /fail HTTP/1.1\r\n", nil},
		{"no backend", "GET /nowhere HTTP/1.1\r\n", nil},
		{"POST with a body", "POST /form HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 13\r\n" + host + "\r\n{\"a\": [1, 2]}", nil},
		{"POST without a body", "POST /empty-post HTTP/1.1\r\n", nil},
		{"PUT with a body", "PUT /put HTTP/1.1\r\nContent-Length: 5\r\nIdempotency-Key: k1\r\n" + host + "\r\nhello", nil},
		{"PATCH with a body", "PATCH /patch HTTP/1.1\r\nContent-Length: 3\r\n" + host + "\r\nabc", nil},
		{"DELETE with a body", "DELETE /del HTTP/1.1\r\nContent-Length: 2\r\n" + host + "\r\nok", nil},
		{"1 MiB body with its length", "GET /big HTTP/1.1\r\n", nil},
		{"1 MiB body chunked", "GET /bigchunked HTTP/1.1\r\n", nil},
		{"40 KB answer head", "GET /bighead HTTP/1.1\r\n", nil},
		{"sticky cookie set", "GET /stick/a HTTP/1.1\r\n", nil},
		{"sticky cookie unknown, set again", "GET /stick/b HTTP/1.1\r\nCookie: meridian_stick=forged\r\n", nil},
		{"sticky cookie not Secure for an untrusted X-Forwarded-Proto", "GET /stick/c HTTP/1.1\r\nX-Forwarded-Proto: https\r\n", nil},
		{"sticky by header", "GET /hdr HTTP/1.1\r\nX-Session: abc\r\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			methods := tc.methods
			if methods == nil {
				methods = []string{"GET"}
			}
			raw := tc.raw + host + "\r\n"
			if strings.Contains(tc.raw, "\r\n\r\n") { // it brings its head's end and a body
				raw = tc.raw
			}
			fast := exchange(t, h.addr("fast"), raw, methods...)[0]
			std := exchange(t, h.addr("std"), raw, methods...)[0]
			if fast.Status == http.StatusOK && tc.methods == nil && len(fast.Body) < 10 {
				t.Errorf("answer body %q: the comparison would say nothing", fast.Body)
			}
			if fast.Status != std.Status || fast.Body != std.Body || fast.Close != std.Close {
				t.Errorf("fast path: %d close=%v %q\nnet/http:  %d close=%v %q", fast.Status, fast.Close, fast.Body, std.Status, std.Close, std.Body)
			}
			// net/http frames every answer itself; the fast path relays the
			// backend's framing.
			for _, hd := range []*answer{fast, std} {
				hd.Header.Del("Content-Length")
				hd.Header.Del("Transfer-Encoding")
			}
			if !reflect.DeepEqual(fast.Header, std.Header) {
				t.Errorf("headers differ:\nfast path: %v\nnet/http:  %v", fast.Header, std.Header)
			}
			if i := strings.Index(raw, "\r\n\r\n"); i+4 < len(raw) {
				var got seen
				if err := json.Unmarshal([]byte(fast.Body), &got); err != nil || got.Body != raw[i+4:] {
					t.Errorf("the backend got body %q (%v), want %q", got.Body, err, raw[i+4:])
				}
			}
			if strings.HasPrefix(tc.name, "cookie route") && !strings.Contains(fast.Body, `"host":"beta.internal"`) {
				t.Errorf("the beta pool's backend saw %q, want Host beta.internal", fast.Body)
			}
			if fast.Header.Get("X-Secret") != "" || fast.Header.Get("X-Other") != "" {
				t.Errorf("headers a Connection header names went on: %v", fast.Header)
			}
			if c := fast.Header.Get("Set-Cookie"); strings.HasPrefix(tc.name, "sticky cookie") &&
				(!strings.HasPrefix(c, "meridian_stick=") || strings.Contains(c, "Secure")) {
				t.Errorf("Set-Cookie %q, want the pool's cookie, not Secure over http", c)
			}
		})
	}
	if got, want := h.metric(`meridian_forward_http_fast_path_requests_total{listener="fast"}`), float64(len(cases)); got != want {
		t.Errorf("fast path requests = %v, want %v: every case is one it takes", got, want)
	}
	if got := h.metric(`meridian_forward_http_fast_path_requests_total{listener="std"}`); got != 0 {
		t.Errorf("fast path requests on the fast_path = false listener = %v, want 0", got)
	}
	if got := h.metric(`meridian_forward_http_handoffs_total{listener="fast"}`); got != 0 {
		t.Errorf("handoffs = %v, want 0", got)
	}
}

// Requests the fast path does not take go to net/http with the
// connection, bytes already read included: pipelined requests, a body
// larger than the fast path's buffer, then a plain request again, all
// answered in order. (A chunked body goes to net/http too, and its
// answer closes the connection: TestAmbiguousLengthClosesConnection.)
func TestFastPathHandsOver(t *testing.T) {
	backend := framingBackend(t)
	h := startForwarder(t, uncheckedPool("web", "", backend)+listenerTOML("fast", "http", "web", ""))
	const host = "Host: www.example.test\r\n"
	raw := "GET /one HTTP/1.1\r\n" + host + "\r\n" +
		"GET /two HTTP/1.1\r\n" + host + "\r\n" +
		"POST /three HTTP/1.1\r\n" + host + "Content-Length: 9000\r\n\r\n" + strings.Repeat("b", 9000) +
		"GET /four HTTP/1.1\r\n" + host + "\r\n"
	answers := exchange(t, h.addr("fast"), raw, "GET", "GET", "POST", "GET")
	for i, want := range []string{"GET /one", "GET /two", "POST /three", "GET /four"} {
		var s seen
		if err := json.Unmarshal([]byte(answers[i].Body), &s); err != nil {
			t.Fatalf("answer %d: %v: %q", i+1, err, answers[i].Body)
		}
		if got := s.Method + " " + s.Path; answers[i].Status != 200 || got != want {
			t.Errorf("answer %d = %d %s, want 200 %s", i+1, answers[i].Status, got, want)
		}
	}
	if got := h.metric(`meridian_forward_http_fast_path_requests_total{listener="fast"}`); got != 2 {
		t.Errorf("fast path requests = %v, want 2 (those before the large body)", got)
	}
	if got := h.metric(`meridian_forward_http_handoffs_total{listener="fast"}`); got != 1 {
		t.Errorf("handoffs = %v, want 1", got)
	}

	// What net/http refuses, it refuses on a handed-over connection too.
	for _, tc := range []struct{ raw, want string }{
		{"GET / HTTP/1.1\r\n\r\n", "400"},                              // no Host
		{"GET / HTTP/1.1\r\n" + host + host + "\r\n", "400"},           // two
		{"GET / HTTP/1.1\r\n" + host + "Bad Header: x\r\n\r\n", "400"}, // not a token
		{"GET / HTTP/1.1\r\n" + host + "X: a\x01b\r\n\r\n", "400"},     // a control character
		{"GET / HTTP/1.1\r\n" + host + "X-Long: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", "431"},
	} {
		c, err := net.DialTimeout("tcp", h.addr("fast"), ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(ioTimeout))
		io.WriteString(c, tc.raw)
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, "HTTP/1.1 "+tc.want) {
			t.Errorf("%.40q: answer %q, want %s", tc.raw, line, tc.want)
		}
	}
}

// Requests over TLS: on https listeners the fast path serves HTTP/1.1
// after its own handshake, and hands connections that chose h2 to
// net/http; either way the backend gets HTTP/1.1 with X-Forwarded-Proto
// https, and the client the listener's HSTS header.
func TestFastPathTLS(t *testing.T) {
	ca := testkit.NewCA(t)
	b := startHTTPBackend(t, "b")
	h := startForwarderWith(t, func(dir string) {
		ca.Server(t, "www.example.test").WriteFiles(t, filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key"))
	}, httpPool("b", "", b)+listenerTOML("tls", "https", "b", `[listener.response_headers]
Strict-Transport-Security = "max-age=63072000"
[[listener.certificate]]
cert_file = "site.pem"
key_file = "site.key"`))
	addr := h.addr("tls")
	for _, tc := range []struct {
		h2        bool
		wantProto string
		fast      float64
		handoffs  float64
	}{
		{false, "HTTP/1.1", 2, 0},
		{true, "HTTP/2.0", 2, 1},
	} {
		client := tlsClient(ca, addr, tc.h2)
		for range 2 {
			resp, err := client.Get("https://www.example.test/secure?q=1")
			if err != nil {
				t.Fatal(err)
			}
			var s seen
			err = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.Proto != tc.wantProto || resp.Header.Get("Strict-Transport-Security") == "" {
				t.Errorf("client spoke %s (want %s), HSTS %q", resp.Proto, tc.wantProto, resp.Header.Get("Strict-Transport-Security"))
			}
			if s.Proto != "HTTP/1.1" || s.Header.Get("X-Forwarded-Proto") != "https" || s.Path != "/secure" || s.Query != "q=1" || s.Host != "www.example.test" {
				t.Errorf("backend saw %s, X-Forwarded-Proto %q, %s %s?%s", s.Proto, s.Header.Get("X-Forwarded-Proto"), s.Host, s.Path, s.Query)
			}
		}
		client.CloseIdleConnections()
		if got := h.metric(`meridian_forward_http_fast_path_requests_total{listener="tls"}`); got != tc.fast {
			t.Errorf("h2=%v: fast path requests = %v, want %v", tc.h2, got, tc.fast)
		}
		if got := h.metric(`meridian_forward_http_handoffs_total{listener="tls"}`); got != tc.handoffs {
			t.Errorf("h2=%v: handoffs = %v, want %v", tc.h2, got, tc.handoffs)
		}
	}
}

// A drain's timeout cuts a fast-path request still on the drained
// backend, whether it waits for the answer's head or for the rest of its
// body: the client's connection closes instead of hanging, and the
// request is no longer in flight.
func TestFastPathDrainTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "the first part")
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release) // before Close, which waits for the handlers
	for _, path := range []string{"/head", "/stream"} {
		t.Run(path, func(t *testing.T) {
			h := startForwarder(t, uncheckedPool("web", "drain_timeout = \"200ms\"", srv.Listener.Addr().String())+
				listenerTOML("web", "http", "web", ""))
			c, err := net.DialTimeout("tcp", h.addr("web"), ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: app.test\r\n\r\n")
			testkit.Eventually(t, "the request in flight", func() bool {
				return h.metric(`meridian_forward_http_active_requests{listener="web"}`) == 1
			})
			if code, _ := h.request("POST", "/api/v1/pools/web/backends/"+srv.Listener.Addr().String()+"/drain", true); code != 200 {
				t.Fatal("drain failed")
			}
			c.SetReadDeadline(time.Now().Add(waitFor))
			got, err := io.ReadAll(c)
			if isTimeout(err) {
				t.Fatalf("got %q and the connection still open: want it closed at the drain timeout", got)
			}
			if path == "/stream" && !strings.HasSuffix(string(got), "the first part") {
				t.Errorf("got %q, want the answer's head and the part sent before the drain", got)
			}
			testkit.Eventually(t, "the request no longer in flight", func() bool {
				return h.metric(`meridian_forward_http_active_requests{listener="web"}`) == 0
			})
			if got := h.metric(`meridian_forward_http_fast_path_requests_total{listener="web"}`); got != 1 {
				t.Errorf("fast path requests = %v, want 1", got)
			}
		})
	}
}

// A head net/http would refuse under max_header_bytes (it allows 4 KiB
// over it) does not get past on the fast path, whose buffer is larger.
func TestFastPathHeadLimit(t *testing.T) {
	backend := framingBackend(t)
	h := startForwarder(t, uncheckedPool("web", "", backend)+
		listenerTOML("web", "http", "web", "max_header_bytes = 1024"))
	for _, tc := range []struct {
		pad  int
		want int
	}{
		{100, http.StatusOK},
		{3000, http.StatusOK}, // within net/http's slack
		{6000, http.StatusRequestHeaderFieldsTooLarge},
	} {
		raw := "GET / HTTP/1.1\r\nHost: www.example.test\r\nX-Pad: " + strings.Repeat("p", tc.pad) + "\r\n\r\n"
		if got := exchange(t, h.addr("web"), raw, "GET")[0].Status; got != tc.want {
			t.Errorf("%d bytes of header: %d, want %d", tc.pad, got, tc.want)
		}
	}
}

// Kept connections the backend closed while idle (a restart, a short
// keep-alive timeout) are not held against it: each request goes again
// on a new connection, however many dead ones the pool holds, as
// net/http's transport does.
func TestFastPathStaleConnections(t *testing.T) {
	b := startHTTPBackend(t, "b")
	h := startForwarder(t, httpPool("web", "", b)+listenerTOML("web", "http", "web", ""))
	var wg sync.WaitGroup
	for range 8 { // several kept connections at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.delay.Store(int64(50 * time.Millisecond))
			exchange(t, h.addr("web"), "GET /fill HTTP/1.1\r\nHost: app.test\r\n\r\n", "GET")
		}()
	}
	wg.Wait()
	b.delay.Store(0)
	b.srv.CloseClientConnections()
	for i := range 3 {
		if got := exchange(t, h.addr("web"), "GET /after HTTP/1.1\r\nHost: app.test\r\n\r\n", "GET")[0].Status; got != http.StatusOK {
			t.Errorf("request %d after the backend closed its connections: %d, want 200", i+1, got)
		}
	}
	if v := h.backend("web", b.addr); v.HTTPErrors != 0 || v.State != "up" {
		t.Errorf("the backend has %d errors and is %s, want none and up", v.HTTPErrors, v.State)
	}
}

// On the fast path a keep-alive client that asks more often than
// idle_timeout stays connected, and one quiet for idle_timeout is closed,
// though the socket's deadline is moved only now and then (timedConn).
func TestFastPathIdleTimeout(t *testing.T) {
	backend := framingBackend(t)
	h := startForwarder(t, uncheckedPool("web", "", backend)+
		listenerTOML("web", "http", "web", `idle_timeout = "600ms"`))
	ask := func(c net.Conn, br *bufio.Reader) error {
		c.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: app.test\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	dialHTTP := func() (net.Conn, *bufio.Reader) {
		c, err := net.DialTimeout("tcp", h.addr("web"), ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	busy, busyR := dialHTTP()
	quiet, quietR := dialHTTP()
	if err := ask(quiet, quietR); err != nil {
		t.Fatal(err)
	}
	// 40 ms apart, within the deadline's slack (75 ms), for 2.5 idle
	// timeouts.
	for i := range 38 {
		if err := ask(busy, busyR); err != nil {
			t.Fatalf("request %d of the busy connection: %v", i+1, err)
		}
		time.Sleep(40 * time.Millisecond)
	}
	quiet.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := quietR.ReadByte(); err == nil || isTimeout(err) {
		t.Fatalf("the quiet connection: %v, want it closed", err)
	}
	if err := ask(busy, busyR); err != nil {
		t.Fatalf("the busy connection after 2.5 idle timeouts of asking: %v", err)
	}
}

// A shutdown ends a fast-path keep-alive connection waiting between
// requests at once, whatever is left of its idle timeout: the client sees
// it closed and the shutdown ends in time.
func TestFastPathShutdownClosesIdle(t *testing.T) {
	backend := framingBackend(t)
	h := startForwarder(t, uncheckedPool("web", "", backend)+
		listenerTOML("web", "http", "web", `idle_timeout = "5m"`))
	c, err := net.DialTimeout("tcp", h.addr("web"), ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(ioTimeout))
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: app.test\r\n\r\n")
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := h.f.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v, want it done before its deadline", err)
	}
	c.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Fatalf("the idle connection: %v, want it closed", err)
	}
}
