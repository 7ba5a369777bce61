package rrl

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
)

func table(t testing.TB, mod func(*Config)) *Table {
	t.Helper()
	c := Config{Enabled: true, Rate: 10, Slip: slip(2)}
	if mod != nil {
		mod(&c)
	}
	c.SetDefaults()
	if p := c.Validate(); len(p) > 0 {
		t.Fatalf("config: %v", p)
	}
	return New(c)
}

var (
	alice = netip.MustParseAddr("192.0.2.7")
	carol = netip.MustParseAddr("192.0.2.200") // alice's /24
	bob   = netip.MustParseAddr("198.51.100.7")
)

// actions judges n responses at time now and returns what each got.
func actions(tb *Table, now uint32, n int, client netip.Addr, c Class, name string) []Action {
	out := make([]Action, n)
	for i := range out {
		out[i] = tb.Judge(now, client, c, name, 1, false).Action
	}
	return out
}

func count(as []Action) map[Action]int {
	m := map[Action]int{}
	for _, a := range as {
		m[a]++
	}
	return m
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Config)
		run   func(tb *Table) []Action
		sends int
		slips int
		drops int
	}{
		{"a burst from one client: the rate, then every 2nd slips", nil,
			func(tb *Table) []Action { return actions(tb, 0, 30, alice, Answer, "www.example.test.") }, 10, 10, 10},
		{"slip 0 drops every limited response", func(c *Config) { c.Slip = slip(0) },
			func(tb *Table) []Action { return actions(tb, 0, 30, alice, Answer, "www.example.test.") }, 10, 0, 20},
		{"slip 1 truncates every limited response", func(c *Config) { c.Slip = slip(1) },
			func(tb *Table) []Action { return actions(tb, 0, 30, alice, Answer, "www.example.test.") }, 10, 20, 0},
		{"clients of one /24 share a bucket", nil,
			func(tb *Table) []Action {
				return append(actions(tb, 0, 10, alice, Answer, "www.example.test."), actions(tb, 0, 10, carol, Answer, "www.example.test.")...)
			}, 10, 5, 5},
		{"another prefix is untouched", nil,
			func(tb *Table) []Action {
				actions(tb, 0, 100, alice, Answer, "www.example.test.")
				return actions(tb, 0, 10, bob, Answer, "www.example.test.")
			}, 10, 0, 0},
		{"another class is untouched", nil,
			func(tb *Table) []Action {
				actions(tb, 0, 100, alice, NXDomain, "example.test.")
				return actions(tb, 0, 10, alice, Answer, "www.example.test.")
			}, 10, 0, 0},
		{"another name is untouched", nil,
			func(tb *Table) []Action {
				actions(tb, 0, 100, alice, Answer, "www.example.test.")
				return actions(tb, 0, 10, alice, Answer, "mail.example.test.")
			}, 10, 0, 0},
		{"half a second later, half the rate again", nil,
			func(tb *Table) []Action {
				actions(tb, 0, 100, alice, Answer, "www.example.test.")
				return actions(tb, 5, 10, alice, Answer, "www.example.test.")
			}, 5, 2, 3},
		{"a second later, the full rate, no more", nil,
			func(tb *Table) []Action {
				actions(tb, 0, 100, alice, Answer, "www.example.test.")
				return actions(tb, 100, 20, alice, Answer, "www.example.test.")
			}, 10, 5, 5},
		{"an exempt prefix is never limited", func(c *Config) { c.Exempt = []string{"192.0.2.0/25"} },
			func(tb *Table) []Action { return actions(tb, 0, 30, alice, Answer, "www.example.test.") }, 30, 0, 0},
		{"IPv6 clients share a /56", nil,
			func(tb *Table) []Action {
				return append(actions(tb, 0, 10, netip.MustParseAddr("2001:db8:0:1::1"), Error, ""),
					actions(tb, 0, 10, netip.MustParseAddr("2001:db8:0:ff::1"), Error, "")...)
			}, 10, 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := count(tt.run(table(t, tt.mod)))
			if got[Send] != tt.sends || got[Slip] != tt.slips || got[Drop] != tt.drops {
				t.Errorf("send %d slip %d drop %d, want %d %d %d", got[Send], got[Slip], got[Drop], tt.sends, tt.slips, tt.drops)
			}
		})
	}
}

func TestExemptByCookie(t *testing.T) {
	tb := table(t, nil)
	for i := range 50 {
		if v := tb.Judge(0, alice, Answer, "www.example.test.", 1, true); v.Action != Send {
			t.Fatalf("response %d to a client with a valid cookie: %s", i, v.Action)
		}
	}
}

// TestLoggedOncePerInterval: a limited bucket asks to be logged once, and
// again only after the log interval.
func TestLoggedOncePerInterval(t *testing.T) {
	tb := table(t, nil)
	logs := 0
	for now := uint32(0); now < 250; now++ { // 25 s of a flood, 20 responses a tick
		for range 20 {
			if tb.Judge(now, alice, Answer, "www.example.test.", 1, false).Log {
				logs++
			}
		}
	}
	if logs != 3 { // at 0, 10 and 20 s
		t.Errorf("%d log lines in 25 s of a flood, want 3", logs)
	}
}

// TestSpoofedFlood: a million distinct prefixes leave the table at its
// size, and a client that keeps asking keeps its bucket.
func TestSpoofedFlood(t *testing.T) {
	tb := table(t, func(c *Config) { c.TableSize = 4096 })
	before := tb.Buckets()
	var m1, m2 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m1)
	for i := range 1_000_000 {
		spoofed := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		tb.Judge(uint32(i/10000), spoofed, Answer, "www.example.test.", 1, false)
	}
	runtime.GC()
	runtime.ReadMemStats(&m2)
	if tb.Buckets() != before || m2.HeapAlloc > m1.HeapAlloc+1<<20 {
		t.Errorf("after a million spoofed prefixes: %d buckets (was %d), heap %d -> %d bytes", tb.Buckets(), before, m1.HeapAlloc, m2.HeapAlloc)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		c   Config
		key string
	}{
		{Config{Rate: 0, Slip: slip(2), IPv4Prefix: 24, IPv6Prefix: 56, TableSize: 1024}, "rate"},
		{Config{Rate: 5, Slip: slip(-1), IPv4Prefix: 24, IPv6Prefix: 56, TableSize: 1024}, "slip"},
		{Config{Rate: 5, Slip: slip(2), IPv4Prefix: 33, IPv6Prefix: 56, TableSize: 1024}, "ipv4_prefix"},
		{Config{Rate: 5, Slip: slip(2), IPv4Prefix: 24, IPv6Prefix: 129, TableSize: 1024}, "ipv6_prefix"},
		{Config{Rate: 5, Slip: slip(2), IPv4Prefix: 24, IPv6Prefix: 56, TableSize: 1}, "table_size"},
		{Config{Rate: 5, Slip: slip(2), IPv4Prefix: 24, IPv6Prefix: 56, TableSize: 1024, Exempt: []string{"10.0.0.0/8", "nope"}}, "exempt[1]"},
	} {
		p := tt.c.Validate()
		if len(p) != 1 || p[0].Key != tt.key {
			t.Errorf("Validate(%+v) = %v, want one problem at %s", tt.c, p, tt.key)
		}
	}
}

func BenchmarkJudge(b *testing.B) {
	tb := table(b, func(c *Config) { c.Rate = 1_000_000 })
	clients := make([]netip.Addr, 1024)
	for i := range clients {
		clients[i] = netip.MustParseAddr(fmt.Sprintf("10.%d.%d.1", i>>8, i&255))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tb.Judge(0, clients[i%len(clients)], Answer, "www.example.test.", 1, false)
		i++
	}
}

func slip(n int) *int { return &n }
