package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestTCPFlood is the reproduction: one address opens 1,100 idle
// TCP connections (more than tcp_max_connections), and other clients are
// still answered over TCP, and everyone over UDP.
func TestTCPFlood(t *testing.T) {
	s := startQuickstart(t)
	addr := fmt.Sprintf("127.0.0.1:%d", s.port)
	kept := 0
	for range 1100 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			continue // the kernel's backlog may refuse some: that is fine
		}
		defer c.Close()
		kept++
	}
	if kept == 0 {
		t.Fatal("no connection opened")
	}
	for _, tt := range []struct{ name, from string }{
		{"another client over TCP", "127.1.0.1"},
		{"a third client over TCP", "127.2.0.1"},
	} {
		out, _, err := s.runDig(t, "-b", tt.from, "+tcp", "+norec", "+tries=1", "+time=3", "www.example.test", "A")
		if err != nil || !strings.Contains(out, "status: NOERROR") {
			t.Errorf("%s during the flood: %v\n%s", tt.name, err, out)
		}
	}
	if r := s.dig(t, "+norec", "www.example.test", "A"); len(addresses(r)) == 0 {
		t.Errorf("UDP during the flood:\n%s", r.out)
	}
}
