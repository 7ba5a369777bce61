package dnsfront

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/meridian-gslb/meridian/gslb/dnsfront/rrl"
	"github.com/miekg/dns"
)

// rrlHandler serves the quickstart's zone with rate limiting at rate
// responses per second, slip 2.
func rrlHandler(t *testing.T, rate int) *Handler {
	t.Helper()
	h := quickstartHandler(t)
	c := rrl.Config{Enabled: true, Rate: rate}
	c.SetDefaults()
	st := *h.State()
	st.RRL = rrl.New(c)
	if err := h.Store(&st); err != nil {
		t.Fatal(err)
	}
	return h
}

// burst sends n queries from client and sorts the replies.
func burst(t *testing.T, h *Handler, n int, client string, udp bool, q func(i int) *dns.Msg) (answered, truncated, dropped int) {
	t.Helper()
	from := netip.MustParseAddr(client)
	for i := range n {
		m := q(i)
		pkt, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		var req dns.Msg
		out := h.answerPacket(new(scratch), &req, pkt, from, udp)
		if out == nil {
			dropped++
			continue
		}
		var r dns.Msg
		if err := r.Unpack(out); err != nil {
			t.Fatalf("reply %d does not unpack: %v", i, err)
		}
		if r.Id != m.Id || len(r.Question) != 1 || r.Question[0] != m.Question[0] {
			t.Fatalf("reply %d: id %d question %v, want the query's", i, r.Id, r.Question)
		}
		if r.Truncated {
			if len(r.Answer)+len(r.Ns) != 0 || (m.IsEdns0() != nil) != (r.IsEdns0() != nil) {
				t.Fatalf("slipped reply %d: %v", i, &r)
			}
			truncated++
			continue
		}
		answered++
	}
	return answered, truncated, dropped
}

func TestRateLimitedAnswers(t *testing.T) {
	www := func(int) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("www.example.test.", dns.TypeA)
		m.SetEdns0(1232, false)
		return m
	}
	random := func(i int) *dns.Msg { // a random-subdomain flood: NXDOMAIN
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("r%d.example.test.", i), dns.TypeA)
		return m
	}
	app := func(int) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("app.example.test.", dns.TypeA)
		return m
	}
	tests := []struct {
		name             string
		client           string
		udp              bool
		q                func(int) *dns.Msg
		answered, tc, dr int
	}{
		{"a burst over UDP: the rate, then half truncated, half dropped", "192.0.2.7", true, www, 10, 15, 15},
		{"over TCP nothing is limited", "192.0.2.7", false, www, 40, 0, 0},
		{"random names share the zone's NXDOMAIN bucket", "192.0.2.7", true, random, 10, 15, 15},
		{"without EDNS, truncated replies carry no OPT", "192.0.2.7", true, app, 10, 15, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := rrlHandler(t, 10)
			a, tc, dr := burst(t, h, 40, tt.client, tt.udp, tt.q)
			if a != tt.answered || tc != tt.tc || dr != tt.dr {
				t.Errorf("answered %d truncated %d dropped %d, want %d %d %d", a, tc, dr, tt.answered, tt.tc, tt.dr)
			}
			// Another client, meanwhile, is answered in full.
			if a, _, _ := burst(t, h, 10, "198.51.100.7", true, tt.q); a != 10 {
				t.Errorf("another prefix: %d of 10 answered", a)
			}
		})
	}
}

func TestRateLimitCounted(t *testing.T) {
	h := rrlHandler(t, 5)
	burst(t, h, 25, "192.0.2.7", true, func(i int) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("www.example.test.", dns.TypeA)
		return m
	})
	if got := h.stats.rrl[rrl.Answer][rrl.Slip].Load() + h.stats.rrl[rrl.Answer][rrl.Drop].Load(); got != 20 {
		t.Errorf("limited answers counted: %d, want 20", got)
	}
}

func BenchmarkRateLimited(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("rrl=%v", on), func(b *testing.B) {
			h := quickstartHandler(b)
			if on {
				c := rrl.Config{Enabled: true, Rate: 1_000_000}
				c.SetDefaults()
				st := *h.State()
				st.RRL = rrl.New(c)
				if err := h.Store(&st); err != nil {
					b.Fatal(err)
				}
			}
			m := new(dns.Msg)
			m.SetQuestion("www.example.test.", dns.TypeA)
			pkt, _ := m.Pack()
			s := new(scratch)
			var req dns.Msg
			// Clients of 1,024 prefixes: each stays within its rate.
			srcs := make([]netip.Addr, 1024)
			for i := range srcs {
				srcs[i] = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if h.answerPacket(s, &req, pkt, srcs[i%len(srcs)], true) == nil {
					b.Fatal("no answer")
				}
				i++
			}
		})
	}
}
