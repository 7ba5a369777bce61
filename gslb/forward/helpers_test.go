package forward

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-gslb/meridian/gslb/forward/config"
	"github.com/meridian-gslb/meridian/internal/testkit"
)

// Bounds on every wait: long enough for a loaded machine, short enough
// that a hang fails the test rather than the run.
const (
	waitFor   = 10 * time.Second
	ioTimeout = 5 * time.Second
	pollEvery = 10 * time.Millisecond
)

// testToken is the admin API's bearer token in the tests.
const testToken = "forward-test-token-0123456789"

// harness is a running forwarder and what the test needs to reach it.
type harness struct {
	t     *testing.T
	f     *Forwarder
	path  string // of the configuration file
	log   *testkit.Buffer
	admin string // http://host:port of the admin API
}

// startForwarder runs a forwarder on src, to which it adds an admin API on
// a free port with testToken. It is shut down when the test ends.
func startForwarder(t *testing.T, src string) *harness {
	t.Helper()
	return startForwarderWith(t, nil, src)
}

// startForwarderWith is startForwarder with prepare run first on the
// folder of the configuration file, to write the files it names.
func startForwarderWith(t *testing.T, prepare func(dir string), src string) *harness {
	t.Helper()
	dir := t.TempDir()
	if prepare != nil {
		prepare(dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, path: filepath.Join(dir, "forward.toml"), log: &testkit.Buffer{}}
	cfg := h.write(src)
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.f = New(Options{Log: log, Metrics: reg})
	reg.MustRegister(h.f.Collector())
	if err := h.f.Start(cfg); err != nil {
		t.Fatalf("start: %v", err)
	}
	h.admin = "http://" + h.f.HTTPAddrs()[0].String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = h.f.Shutdown(ctx) // a test that shut it down already gets ErrShuttingDown
		if t.Failed() {
			t.Logf("forwarder log:\n%s", h.log.String())
		}
	})
	return h
}

// write writes src, with the test's admin section, as the configuration
// file and loads it.
func (h *harness) write(src string) *config.Forward {
	h.t.Helper()
	full := "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"token\"\n\n" + src
	if err := os.WriteFile(h.path, []byte(full), 0o644); err != nil {
		h.t.Fatal(err)
	}
	cfg, err := config.LoadForward(h.path)
	if err != nil {
		h.t.Fatalf("configuration: %v\n%s", err, full)
	}
	return cfg
}

// reload rewrites the configuration and reloads it, as SIGHUP does.
func (h *harness) reload(src string) {
	h.t.Helper()
	if err := h.f.Reload(h.write(src)); err != nil {
		h.t.Fatalf("reload: %v", err)
	}
}

// addr is where listener name accepts.
func (h *harness) addr(name string) string {
	h.t.Helper()
	a := h.f.Addr(name)
	if a == nil {
		h.t.Fatalf("no listener %q", name)
	}
	return a.String()
}

// request sends an admin API request, with the token when auth is set.
func (h *harness) request(method, path string, auth bool) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.admin+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	client := http.Client{Timeout: ioTimeout}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// backend returns a backend of a pool as the admin API lists it.
func (h *harness) backend(pool, addr string) BackendView {
	h.t.Helper()
	code, body := h.request("GET", "/api/v1/pools/"+pool, false)
	if code != http.StatusOK {
		h.t.Fatalf("GET pool %s: %d %s", pool, code, body)
	}
	var pv PoolView
	if err := json.Unmarshal([]byte(body), &pv); err != nil {
		h.t.Fatal(err)
	}
	for _, b := range pv.Backends {
		if b.Address == addr {
			return b
		}
	}
	h.t.Fatalf("pool %s has no backend %s: %s", pool, addr, body)
	return BackendView{}
}

// metric returns the value of one series as /metrics shows it, labels
// written in Prometheus's order (sorted by name); -1 when it is absent.
func (h *harness) metric(series string) float64 {
	h.t.Helper()
	code, body := h.request("GET", "/metrics", false)
	if code != http.StatusOK {
		h.t.Fatalf("GET /metrics: %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				h.t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// logged reports whether the forwarder logged msg.
func (h *harness) logged(msg string) bool {
	return strings.Contains(h.log.String(), "msg=\""+msg+"\"")
}

// tcpBackend is a real TCP server on loopback that can be stopped, and
// started again on the same address.
type tcpBackend struct {
	t       *testing.T
	name    string
	addr    string
	handler func(net.Conn)
	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
}

// startTCPBackend serves handler on addr ("" for a free port).
func startTCPBackend(t *testing.T, name, addr string, handler func(net.Conn)) *tcpBackend {
	t.Helper()
	b := &tcpBackend{t: t, name: name, handler: handler, conns: map[net.Conn]bool{}}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	b.listen(addr)
	t.Cleanup(b.stop)
	return b
}

func (b *tcpBackend) listen(addr string) {
	b.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.t.Fatalf("backend %s: %v", b.name, err)
	}
	b.mu.Lock()
	b.ln, b.addr = ln, ln.Addr().String()
	b.mu.Unlock()
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns[c] = true
			b.mu.Unlock()
			b.wg.Go(func() {
				defer func() {
					b.mu.Lock()
					delete(b.conns, c)
					b.mu.Unlock()
					c.Close()
				}()
				c.SetDeadline(time.Now().Add(waitFor))
				b.handler(c)
			})
		}
	})
}

// stop closes the listener and every connection: the server is gone, and
// connecting to it is refused.
func (b *tcpBackend) stop() {
	b.mu.Lock()
	if b.ln != nil {
		b.ln.Close()
		b.ln = nil
	}
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// restart listens again on the same address.
func (b *tcpBackend) restart() { b.listen(b.addr) }

// named is a backend handler that says its name, then echoes.
func named(name string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := io.WriteString(c, name+"\n"); err != nil {
			return
		}
		io.Copy(c, c)
	}
}

// freeAddr returns a loopback address nothing listens on: connecting to
// it is refused, and a test can start a server there later.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// client is one client connection through the forwarder.
type client struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitFor))
	return &client{t: t, Conn: c, r: bufio.NewReader(c)}
}

// line reads a line, without its newline; "" at EOF.
func (c *client) line() string {
	s, err := c.r.ReadString('\n')
	if err != nil && s == "" {
		return ""
	}
	return strings.TrimSuffix(s, "\n")
}

// echo sends msg and checks it comes back.
func (c *client) echo(msg string) {
	c.t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c.r, got); err != nil {
		c.t.Fatalf("echo of %q: %v", msg, err)
	}
	if string(got) != msg {
		c.t.Fatalf("echo = %q, want %q", got, msg)
	}
}

// closed reports whether the peer closed the connection (EOF or reset);
// it waits at most waitFor.
func (c *client) closed() bool {
	c.SetReadDeadline(time.Now().Add(waitFor))
	_, err := c.r.ReadByte()
	return err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// connectName connects and returns the name of the backend that answered,
// "" when the connection was closed without one.
func connectName(t *testing.T, addr string) string {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	return c.line()
}

// pool writes a [[pool]] of the given backends with extra pool keys.
func pool(name, extra string, addrs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[[pool]]\nname = %q\n%s\n", name, extra)
	for _, a := range addrs {
		fmt.Fprintf(&b, "[[pool.backend]]\naddress = %q\n", a)
	}
	return b.String()
}

// tcpListener writes a [[listener]] on a free loopback port.
func listenerTOML(name, protocol, poolName, extra string) string {
	return fmt.Sprintf("[[listener]]\nname = %q\nprotocol = %q\nlisten = \"127.0.0.1:0\"\npool = %q\n%s\n", name, protocol, poolName, extra)
}
