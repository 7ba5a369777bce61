package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	dir := t.TempDir()
	s := &instance{dir: dir, config: filepath.Join(dir, "forward.toml"), stderr: &syncBuffer{}, done: make(chan struct{})}
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
