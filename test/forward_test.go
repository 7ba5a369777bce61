package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// echoBackend is a TCP server on loopback that says its name, then echoes.
type echoBackend struct {
	name string
	addr string
	ln   net.Listener
	mu   sync.Mutex
	open map[net.Conn]bool
	wg   sync.WaitGroup
}

func startEchoBackend(t *testing.T, name string) *echoBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &echoBackend{name: name, addr: ln.Addr().String(), ln: ln, open: map[net.Conn]bool{}}
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.open[c] = true
			b.mu.Unlock()
			b.wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(commandTimeout))
				io.WriteString(c, name+"\n")
				io.Copy(c, c)
			})
		}
	})
	t.Cleanup(b.stop)
	return b
}

// stop takes the backend away: the port refuses connections.
func (b *echoBackend) stop() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.open {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// startForward runs meridian forward on config and returns once it logs
// that it is forwarding.
func startForward(t *testing.T, config string) *instance {
	t.Helper()
	return startForwardIn(t, t.TempDir(), config)
}

// startForwardIn is startForward with its configuration in dir, beside
// the files it names.
func startForwardIn(t *testing.T, dir, config string) *instance {
	t.Helper()
	s := &instance{dir: dir, config: filepath.Join(dir, "forward.toml"), stderr: &testkit.Buffer{}, done: make(chan struct{})}
	writeFile(t, s.config, config)
	s.cmd = exec.Command(binary, "forward", "-config", s.config)
	s.cmd.Stdout, s.cmd.Stderr = s.stderr, s.stderr
	s.cmd.WaitDelay = exitTimeout
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = s.cmd.Wait() // the exit status is read from ProcessState
		close(s.done)
	}()
	t.Cleanup(func() {
		if !s.exited() {
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("meridian forward stderr:\n%s", s.stderr.String())
		}
	})
	s.waitLog(t, "forwarding", 0)
	return s
}

// forwardConfig is a forwarder in front of backends, on free ports, with
// JSON logs the test reads its addresses from.
func forwardConfig(backends ...string) string {
	var b strings.Builder
	b.WriteString(`[log]
format = "json"

[admin]
listen = "127.0.0.1:0"

[[pool]]
name = "web"
balance = "round_robin"
drain_timeout = "2s"
[pool.check]
type = "tcp"
interval = "100ms"
timeout = "80ms"
fall = 2
rise = 2
`)
	for _, addr := range backends {
		fmt.Fprintf(&b, "[[pool.backend]]\naddress = %q\n", addr)
	}
	b.WriteString(`
[[listener]]
name = "web"
listen = "127.0.0.1:0"
pool = "web"
`)
	return b.String()
}

// backendName connects through the forwarder, checks the echo and
// returns the name of the backend that answered ("" if none did).
func backendName(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, commandTimeout)
	if err != nil {
		t.Fatalf("connect to the forwarder: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(commandTimeout))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		return ""
	}
	io.WriteString(c, "ping\n")
	if echo, err := r.ReadString('\n'); err != nil || echo != "ping\n" {
		t.Fatalf("echo through the forwarder: %q, %v", echo, err)
	}
	return strings.TrimSpace(name)
}

// TestForward runs meridian forward in front of two echo backends: traffic
// spreads over both; when one stops, every new connection goes to the
// other and the admin API and metrics show it down; SIGHUP reloads; SIGTERM
// drains and exits cleanly.
func TestForward(t *testing.T) {
	a, b := startEchoBackend(t, "a"), startEchoBackend(t, "b")
	s := startForward(t, forwardConfig(a.addr, b.addr))
	listen := s.waitLog(t, "listening", 0).str("addr")
	admin := "http://" + s.waitLog(t, "http endpoints", 0).str("addr")

	seen := map[string]int{}
	for range 4 {
		seen[backendName(t, listen)]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Fatalf("4 connections went %v, want 2 to each backend", seen)
	}

	b.stop()
	for i := range 6 {
		if name := backendName(t, listen); name != "a" {
			t.Fatalf("connection %d after b stopped went to %q, want a", i, name)
		}
	}
	healthy := fmt.Sprintf(`meridian_forward_backend_healthy{backend=%q,pool="web"}`, b.addr)
	deadline := time.Now().Add(readyTimeout)
	for {
		_, page := adminCall(t, "GET", admin+"/metrics", "")
		if metric(page, healthy) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not 0 within %v", healthy, readyTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body := adminCall(t, "GET", admin+"/api/v1/pools/web", "")
	if code != http.StatusOK || !strings.Contains(body, `"health": "down"`) || !strings.Contains(body, `"healthy": 1`) {
		t.Errorf("GET /api/v1/pools/web = %d\n%s", code, body)
	}
	if code, _ := adminCall(t, "GET", admin+"/health/web", ""); code != http.StatusOK {
		t.Errorf("capacity with 1 of min_healthy 1 = %d, want 200", code)
	}

	// The stopped backend leaves the configuration; a new one joins.
	c := startEchoBackend(t, "c")
	writeFile(t, s.config, forwardConfig(a.addr, c.addr))
	s.signal(t, syscall.SIGHUP)
	s.waitLog(t, "reloaded", 0)
	seen = map[string]int{}
	for range 4 {
		seen[backendName(t, listen)]++
	}
	if seen["a"] != 2 || seen["c"] != 2 {
		t.Errorf("after the reload 4 connections went %v, want 2 to a and c", seen)
	}

	// A broken file keeps the running configuration.
	writeFile(t, s.config, "[[pool]]\nname = 5\n")
	s.signal(t, syscall.SIGHUP)
	s.waitLog(t, "reload failed", 0)
	if name := backendName(t, listen); name != "a" && name != "c" {
		t.Errorf("after a failed reload, went to %q", name)
	}

	s.signal(t, syscall.SIGTERM)
	if code := s.waitExit(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if len(s.logsWithMsg("stopped")) != 1 {
		t.Error("no \"stopped\" log")
	}
}

// TestForwardBadConfig: a configuration error is reported with its file,
// line and key, and the forwarder does not start.
func TestForwardBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "forward.toml")
	writeFile(t, path, "[[pool]]\nname = \"web\"\nbalance = \"fastest\"\n[[pool.backend]]\naddress = \"127.0.0.1:1\"\n")
	_, stderr, code := runMeridian(t, "forward", "-config", path)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	for _, want := range []string{path + ":3: pool[0].balance: must be one of", "no [[listener]] configured"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if _, _, code := runMeridian(t, "forward"); code != 2 {
		t.Errorf("forward without -config exited %d, want 2", code)
	}
}

// TestCheckForwarder: meridian check recognises a forwarder's file and
// meridian forward -check checks it; both list every error with
// file:line: key, and pass a good file (issue 15, item 7).
func TestCheckForwarder(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "forward.toml")
	writeFile(t, bad, "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pool]]\nname = \"web\"\nbalance = \"fastest\"\n"+
		"[[pool.backend]]\naddress = \"127.0.0.1:1\"\nweight = -3\n\n"+
		"[[listener]]\nname = \"front\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:0\"\npool = \"nope\"\n")
	good := filepath.Join("..", "examples", "forward", "l7.toml")
	wantBad := []string{bad + ":6: pool[0].balance: must be one of", bad + ":9: pool[0].backend[0].weight:", bad + ":15: listener[0].pool:"}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"check, bad", []string{"check", "-config", bad}, 1, "", wantBad},
		{"forward -check, bad", []string{"forward", "-check", "-config", bad}, 1, "", wantBad},
		{"check, good", []string{"check", "-config", good}, 0, "l7.toml: ok (forwarder: 2 pools, 2 listeners)", nil},
		{"forward -check, good", []string{"forward", "-check", "-config", good}, 0, "l7.toml: ok (forwarder:", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runMeridian(t, tt.args...)
			if code != tt.code || !strings.Contains(stdout, tt.stdout) {
				t.Errorf("exit %d, stdout %q; want %d and %q\nstderr:\n%s", code, stdout, tt.code, tt.stdout, stderr)
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not say %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(stderr, "unknown key") {
				t.Errorf("read as a DNS node's file:\n%s", stderr)
			}
		})
	}
}

// webBackend is an HTTP server on loopback that says its name, and
// switches to an echo on a WebSocket upgrade.
func webBackend(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			io.Copy(c, brw)
			return
		}
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name+" "+r.URL.Path+"\n")
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

const e2eToken = "e2e-forward-token-0123456789"

// l7Config is an L7 forwarder: HTTPS with a certificate, a rate-limited
// API route, and the app route sticky by cookie with a canary pool.
func l7Config(web1, web2, canary, appPrefix string) string {
	return fmt.Sprintf(`[log]
format = "json"

[admin]
listen = "127.0.0.1:0"
token_file = "token"

[access_log]
path = "access.log"

[[rate_limit]]
name = "api"
algorithm = "sliding_window"
limit = 2
window = "1h"
key = "api_key"

[[pool]]
name = "web"
drain_timeout = "1s"
[pool.check]
type = "none"
[pool.sticky]
mode = "cookie"
key_file = "sticky.key"
[[pool.backend]]
address = %q
[[pool.backend]]
address = %q

[[pool]]
name = "next"
[pool.check]
type = "none"
[[pool.backend]]
address = %q

[[listener]]
name = "https"
protocol = "https"
listen = "127.0.0.1:0"
pool = "web"
[listener.response_headers]
Strict-Transport-Security = "max-age=600"
[[listener.certificate]]
cert_file = "site.pem"
key_file = "site.key"

[[listener.route]]
name = "api"
path_prefix = "/api/"
strip_prefix = "/api"
pool = "web"
rate_limit = "api"

[[listener.route]]
name = "app"
path_prefix = %q
pool = "web"
canary = { pool = "next", percent = 0 }
`, web1, web2, canary, appPrefix)
}

// TestForwardL7 runs meridian forward as an HTTPS proxy: HTTP/2 with the
// configured certificate and HSTS, a route with its prefix stripped, a
// sticky cookie that holds, an API key limited to its quota, a canary
// rolled to 100% and back through the admin API, a WebSocket tunnel that
// outlives a SIGHUP reload, and a clean exit on SIGTERM that closes the
// tunnel at the drain timeout.
func TestForwardL7(t *testing.T) {
	web1, web2, next := webBackend(t, "web1"), webBackend(t, "web2"), webBackend(t, "next")
	dir := t.TempDir()
	ca := testkit.NewCA(t)
	ca.Server(t, "app.test").WriteFiles(t, filepath.Join(dir, "site.pem"), filepath.Join(dir, "site.key"))
	roots := ca.Pool
	writeFile(t, filepath.Join(dir, "token"), e2eToken+"\n")
	writeFile(t, filepath.Join(dir, "sticky.key"), "e2e-sticky-key-0123456789abcdef\n")
	s := startForwardIn(t, dir, l7Config(web1, web2, next, "/"))
	addr := ""
	for _, e := range s.logsWithMsg("listening") {
		if e.str("listener") == "https" {
			addr = e.str("addr")
		}
	}
	admin := "http://" + s.waitLog(t, "http endpoints", 0).str("addr")
	client := &http.Client{Timeout: commandTimeout, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	get := func(path string, header map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://app.test"+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	resp, body := get("/api/users", map[string]string{"X-API-Key": "k1"})
	if resp.Proto != "HTTP/2.0" || resp.Header.Get("Strict-Transport-Security") != "max-age=600" || !strings.HasSuffix(body, " /users\n") {
		t.Errorf("GET /api/users: %s, HSTS %q, %q", resp.Proto, resp.Header.Get("Strict-Transport-Security"), body)
	}

	// Sticky: the cookie of the first answer keeps the client on its
	// backend.
	resp, body = get("/home", nil)
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "meridian_web" {
			cookie = c.Value
		}
	}
	if cookie == "" {
		t.Fatalf("no sticky cookie: %v", resp.Header)
	}
	pinned := strings.Fields(body)[0]
	for i := range 6 {
		if _, b := get("/home", map[string]string{"Cookie": "meridian_web=" + cookie}); strings.Fields(b)[0] != pinned {
			t.Fatalf("request %d with the cookie went to %q, want %s", i, b, pinned)
		}
	}

	// The API key's quota is 2 an hour: k1 has used one.
	if resp, _ := get("/api/x", map[string]string{"X-API-Key": "k1"}); resp.StatusCode != 200 {
		t.Errorf("second request of k1: %d", resp.StatusCode)
	}
	if resp, _ := get("/api/x", map[string]string{"X-API-Key": "k1"}); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third request of k1: %d, Retry-After %q; want 429", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// Canary to 100%, then rolled back.
	canary := admin + "/api/v1/listeners/https/routes/app/canary"
	if code, body := adminBody(t, "PUT", canary, e2eToken, `{"percent": 100}`); code != 200 {
		t.Fatalf("PUT canary: %d %s", code, body)
	}
	for range 4 {
		if _, b := get("/home", nil); !strings.HasPrefix(b, "next ") {
			t.Errorf("at 100%% a request went to %q", b)
		}
	}
	if code, _ := adminBody(t, "DELETE", canary, e2eToken, ""); code != 200 {
		t.Fatal("DELETE canary failed")
	}
	if _, b := get("/home", nil); strings.HasPrefix(b, "next ") {
		t.Error("after the rollback a request still went to the canary")
	}
	if len(s.logsWithMsg("audit: canary share")) != 2 {
		t.Error("the canary changes are not audited")
	}

	// A WebSocket tunnel over TLS, then a reload that changes the routes.
	raw, err := tls.DialWithDialer(&net.Dialer{Timeout: commandTimeout}, "tcp", addr, &tls.Config{ServerName: "app.test", RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(commandTimeout))
	br := bufio.NewReader(raw)
	io.WriteString(raw, "GET /chat HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if up, err := http.ReadResponse(br, nil); err != nil || up.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", up, err)
	}
	echo := func(msg string) {
		t.Helper()
		io.WriteString(raw, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo %q: %q %v", msg, got, err)
		}
	}
	echo("before the reload")
	writeFile(t, s.config, l7Config(web1, web2, next, "/app/"))
	s.signal(t, syscall.SIGHUP)
	s.waitLog(t, "reloaded", 0)
	echo("after the reload")
	// The reload moved the app route, and its canary, from / to /app/.
	// With the canary at 100%, /app/ goes to it, while /home, which no
	// route takes now, goes to the listener's pool; before the reload
	// /home went to the canary too.
	if code, body := adminBody(t, "PUT", canary, e2eToken, `{"percent": 100}`); code != 200 {
		t.Fatalf("PUT canary after the reload: %d %s", code, body)
	}
	if _, b := get("/app/home", nil); b != "next /app/home\n" {
		t.Errorf("after the reload, at 100%% /app/home went to %q, want the canary", b)
	}
	for range 4 {
		if _, b := get("/home", nil); b != "web1 /home\n" && b != "web2 /home\n" {
			t.Errorf("after the reload /home went to %q, want the listener's pool (web1 or web2)", b)
		}
	}
	if code, _ := adminBody(t, "DELETE", canary, e2eToken, ""); code != 200 {
		t.Fatal("DELETE canary after the reload failed")
	}

	code, page := adminCall(t, "GET", admin+"/metrics", "")
	if code != 200 || metric(page, `meridian_forward_http_requests_total{code="4xx",listener="https",route="api"}`) != 1 ||
		metric(page, `meridian_forward_http_ratelimited_total{listener="https",route="api"}`) != 1 {
		t.Errorf("route metrics missing or wrong: %d", code)
	}
	if log := readFile(t, filepath.Join(dir, "access.log")); !strings.Contains(log, `"route":"api"`) || !strings.Contains(log, `"backend":"`+web1) && !strings.Contains(log, `"backend":"`+web2) {
		t.Errorf("access log:\n%s", log)
	}

	// SIGTERM drains: the tunnel still open is closed at the web pool's
	// drain_timeout (1s), not at the shutdown's deadline (next's default
	// drain_timeout and 5s) nor the process's exit, and the forwarder
	// exits.
	const drainTimeout = time.Second
	term := time.Now()
	s.signal(t, syscall.SIGTERM)
	raw.SetReadDeadline(term.Add(drainTimeout + 3*time.Second))
	_, err = br.ReadByte()
	var ne net.Error
	switch took := time.Since(term); {
	case err == nil:
		t.Error("the tunnel sent data instead of closing at the drain timeout")
	case errors.As(err, &ne) && ne.Timeout():
		t.Errorf("the tunnel was still open %v after SIGTERM, past the drain timeout of %v", took, drainTimeout)
	case took < drainTimeout:
		t.Errorf("the tunnel was closed %v after SIGTERM, before the drain timeout of %v: %v", took, drainTimeout, err)
	}
	if code := s.waitExit(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

// adminBody sends an admin API request with a body.
func adminBody(t *testing.T, method, url, bearer, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := (&http.Client{Timeout: commandTimeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// unsolicitedBackend answers each request, then writes an answer nobody
// asked for on the idle connection: net/http's transport logs that
// through the standard library's log package.
func unsolicitedBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
				time.Sleep(200 * time.Millisecond)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				time.Sleep(time.Second)
			}()
		}
	}()
	return ln.Addr().String()
}

// With JSON logs, what Go's standard library logs (here net/http's
// transport, about an answer on an idle connection) comes out as JSON
// lines too, and nothing else reaches stderr.
func TestForwardStdLogIsJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	backend := unsolicitedBackend(t)
	s := startForward(t, fmt.Sprintf(`[log]
format = "json"

[admin]
listen = "127.0.0.1:0"

[[pool]]
name = "web"
[pool.check]
type = "none"
[[pool.backend]]
address = %q

[[listener]]
name = "web"
protocol = "http"
listen = "127.0.0.1:0"
pool = "web"
fast_path = false
`, backend))
	listen := s.waitLog(t, "listening", 0).str("addr")
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + listen + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	e := s.waitLog(t, "Unsolicited response received on idle HTTP channel", 0)
	if e.str("level") != "WARN" {
		t.Errorf("the transport's line is logged at %q, want WARN", e.str("level"))
	}
	for _, line := range strings.Split(strings.TrimSpace(s.stderr.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("a line on stderr is not JSON: %q", line)
		}
	}
}
