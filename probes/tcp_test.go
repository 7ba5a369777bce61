package probes

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// listen accepts and closes connections on a free loopback port until the
// test ends; accepted receives each client's address.
func listen(t *testing.T) (ln net.Listener, accepted <-chan net.Addr) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Addr, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case ch <- conn.RemoteAddr():
			default:
			}
			conn.Close()
		}
	}()
	return ln, ch
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func newTCP(t *testing.T, cfg TCPConfig) *TCPChecker {
	t.Helper()
	c, err := NewTCPChecker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func check(c Checker, timeout time.Duration) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Check(ctx)
}

func TestTCPChecker(t *testing.T) {
	ln, accepted := listen(t)
	open := ln.Addr().String()

	tests := []struct {
		name       string
		cfg        TCPConfig
		wantOK     bool
		wantReason string
	}{
		{"listening", TCPConfig{Addr: open}, true, "connected"},
		{"from a source address", TCPConfig{Addr: open, Source: netip.MustParseAddr("127.0.0.1")}, true, "connected"},
		{"closed port", TCPConfig{Addr: closedPort(t)}, false, "connect: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := check(newTCP(t, tt.cfg), 2*time.Second)
			if r.OK != tt.wantOK || r.Reason != tt.wantReason {
				t.Fatalf("got OK=%v reason %q, want OK=%v reason %q", r.OK, r.Reason, tt.wantOK, tt.wantReason)
			}
			if r.RTT <= 0 {
				t.Errorf("RTT %v, want > 0", r.RTT)
			}
			if tt.wantOK && tt.cfg.Source.IsValid() {
				select {
				case a := <-accepted:
					if got := a.(*net.TCPAddr).AddrPort().Addr(); got != tt.cfg.Source {
						t.Errorf("server saw the client at %v, want %v", got, tt.cfg.Source)
					}
				case <-time.After(2 * time.Second):
					t.Error("the server accepted nothing")
				}
			}
			for len(accepted) > 0 {
				<-accepted
			}
		})
	}
}

// A source address the host does not have fails the bind, which shows the
// checker binds the address it is given.
func TestTCPCheckerBindsSource(t *testing.T) {
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_nonlocal_bind"); strings.TrimSpace(string(b)) == "1" {
		t.Skip("ip_nonlocal_bind is on: binding a foreign address succeeds")
	}
	ln, _ := listen(t)
	c := newTCP(t, TCPConfig{Addr: ln.Addr().String(), Source: netip.MustParseAddr("192.0.2.1")})
	r := check(c, 2*time.Second)
	if r.OK || !strings.HasPrefix(r.Reason, "bind: ") {
		t.Fatalf("got OK=%v reason %q, want a bind failure", r.OK, r.Reason)
	}
}

func TestTCPCheckerDeadline(t *testing.T) {
	ln, _ := listen(t)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	r := newTCP(t, TCPConfig{Addr: ln.Addr().String()}).Check(ctx)
	if r.OK || r.Reason != "connect: timeout" {
		t.Fatalf("got OK=%v reason %q, want connect: timeout", r.OK, r.Reason)
	}
}

func TestNewTCPCheckerInvalid(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1", ":80", "127.0.0.1:", "[::1"} {
		if _, err := NewTCPChecker(TCPConfig{Addr: addr}); !errors.Is(err, ErrInvalidCheck) {
			t.Errorf("NewTCPChecker(%q): %v, want ErrInvalidCheck", addr, err)
		}
	}
}

func TestTCPCheckerEqual(t *testing.T) {
	a := newTCP(t, TCPConfig{Addr: "127.0.0.1:80"})
	if !a.Equal(newTCP(t, TCPConfig{Addr: "127.0.0.1:80"})) {
		t.Error("same definition: not equal")
	}
	if a.Equal(newTCP(t, TCPConfig{Addr: "127.0.0.1:81"})) {
		t.Error("other port: equal")
	}
	if a.Equal(newTCP(t, TCPConfig{Addr: "127.0.0.1:80", Source: netip.MustParseAddr("127.0.0.1")})) {
		t.Error("other source: equal")
	}
	if a.Equal(mustHTTP(t, HTTPConfig{Addr: "127.0.0.1:80"})) {
		t.Error("an HTTP check: equal")
	}
}
