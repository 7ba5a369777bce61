//go:build linux

package dnsfront

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPLoops serves IPv4 and IPv6 with each UDP loop: the blocking one
// (the default on Linux) and the netpoller's, which stays as a switch.
func TestUDPLoops(t *testing.T) {
	for _, poller := range []bool{false, true} {
		for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
			name := map[bool]string{false: "blocking", true: "poller"}[poller] + " " + addr
			t.Run(name, func(t *testing.T) {
				srv, _ := startServer(t, Listen{Addrs: []string{addr}, UDPSockets: 2, UDPPoller: poller})
				for _, u := range srv.udps {
					if blocking := u.sock != nil; blocking == poller {
						t.Fatalf("socket %s: blocking loop %v, want %v", u.addr, blocking, !poller)
					}
				}
				for range 4 { // the kernel spreads clients over both sockets
					m := ask(t, "udp", srv.UDPAddrs()[0].String(), "www.example.test.", dns.TypeA, 1232)
					if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 2 {
						t.Fatalf("got %v", m)
					}
				}
			})
		}
	}
}

// TestUDPStopWhileBlocked stops a server whose readers wait in recvmmsg:
// Shutdown must wake them (not merely give up at its deadline), and no
// goroutine of the server may be left.
func TestUDPStopWhileBlocked(t *testing.T) {
	before := runtime.NumGoroutine()
	h := quickstartHandler(t)
	srv := NewServer(Listen{Addrs: []string{"127.0.0.1:0", "[::1]:0"}, UDPSockets: 2, TCP: tcpLimits(TCPLimits{})}, h, discard())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	addr := srv.UDPAddrs()[0].String()
	ask(t, "udp", addr, "www.example.test.", dns.TypeA, 0) // the readers are up, then idle
	stopped := make(chan error, 1)
	go func() {
		// A deadline far past the test's bound: returning early means the
		// readers were woken.
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		stopped <- srv.Shutdown(ctx)
	}()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown still waiting for the UDP readers after 10s")
	}
	for _, u := range srv.udps {
		select {
		case <-u.done:
		default:
			t.Fatalf("reader of %s still running after Shutdown", u.addr)
		}
	}
	if m := rawUDP(t, addr, packQuery(t), 300*time.Millisecond); m != nil {
		t.Fatalf("answered after shutdown: %v", m)
	}
	waitGoroutines(t, before)
}

func packQuery(t *testing.T) []byte {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	pkt, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

// waitGoroutines waits, within a bound, for the goroutine count to come
// back to n (exiting goroutines take a moment to be counted out).
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	for range 200 {
		if runtime.NumGoroutine() <= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
}
