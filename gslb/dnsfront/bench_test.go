package dnsfront

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb"

	"github.com/miekg/dns"
)

// benchCases are the answers the benchmarks measure.
var benchCases = []struct {
	name  string
	qname string
	qtype uint16
}{
	{"static_A", "www.example.test.", dns.TypeA},
	{"static_A_mixed_case", "WWW.Example.Test.", dns.TypeA},
	{"nxdomain", "nope.example.test.", dns.TypeA},
	{"nodata", "www.example.test.", dns.TypeMX},
	{"referral", "host.child.example.test.", dns.TypeA},
	{"wildcard", "x.apps.example.test.", dns.TypeA},
	{"cname_chase", "shop.example.test.", dns.TypeA},
	{"refused", "example.org.", dns.TypeA},
}

// BenchmarkUDPPacket measures what the UDP loop does per packet between
// read and write: raw query in, raw reply out. Static answers take the fast
// path; wildcard, CNAME and refused take the full one.
func BenchmarkUDPPacket(b *testing.B) {
	h := quickstartHandler(b)
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			q := new(dns.Msg)
			q.SetQuestion(bc.qname, bc.qtype)
			q.SetEdns0(1232, false)
			pkt, err := q.Pack()
			if err != nil {
				b.Fatal(err)
			}
			s := new(scratch)
			var req dns.Msg
			b.ReportAllocs()
			for b.Loop() {
				if h.answerPacket(s, &req, pkt, testClient, true) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}

// BenchmarkFullPath measures the full path alone, from an unpacked query
// to the packed reply: what the fast path hands on.
func BenchmarkFullPath(b *testing.B) {
	h := quickstartHandler(b)
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			q := new(dns.Msg)
			q.SetQuestion(bc.qname, bc.qtype)
			q.SetEdns0(1232, false)
			s := new(scratch)
			b.ReportAllocs()
			for b.Loop() {
				h.answer(h.State(), s, q, true, testClient)
			}
		})
	}
}

// BenchmarkUDPPacketDynamic measures a geo-decided answer for the
// quickstart's app.example.test per packet, with and without ECS, against
// the static answer of the same shape.
func BenchmarkUDPPacketDynamic(b *testing.B) {
	health := gslb.NewHealthMap()
	h, e := gslbHandler(b, health)
	for _, id := range []string{"us-east/192.0.2.100", "us-east/192.0.2.101", "eu-west/198.51.100.100", "ap-northeast/203.0.113.100"} {
		health.Set(id, gslb.Up)
	}
	e.Refresh()
	for _, bc := range []struct{ name, qname, subnet string }{
		{"static_A", "www.example.test.", ""},
		{"geo_ecs", "app.example.test.", "198.51.100.0/24"},
		{"geo_source_address", "app.example.test.", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			pkt, err := withECS(bc.qname, dns.TypeA, bc.subnet).Pack()
			if err != nil {
				b.Fatal(err)
			}
			s := new(scratch)
			var req dns.Msg
			src := netip.MustParseAddr("203.0.113.53")
			b.ReportAllocs()
			for b.Loop() {
				if h.answerPacket(s, &req, pkt, src, true) == nil {
					b.Fatal("no answer")
				}
			}
		})
	}
}

// BenchmarkUDPRoundTrip is one query and its answer through the UDP loops
// on loopback, client included: allocations per op are the loop's own
// (a connected UDP socket's Write and Read allocate nothing).
func BenchmarkUDPRoundTrip(b *testing.B) {
	for _, poller := range []bool{false, true} {
		b.Run(map[bool]string{false: "blocking", true: "poller"}[poller], func(b *testing.B) {
			h := quickstartHandler(b)
			srv := NewServer(Listen{Addrs: []string{"127.0.0.1:0"}, UDPPoller: poller, TCP: tcpLimits(TCPLimits{})}, h, discard())
			if err := srv.Start(); err != nil {
				b.Fatal(err)
			}
			defer srv.Shutdown(context.Background())
			c, err := net.Dial("udp", srv.UDPAddrs()[0].String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			q := new(dns.Msg)
			q.SetQuestion("www.example.test.", dns.TypeA)
			pkt, _ := q.Pack()
			buf := make([]byte, dns.MaxMsgSize)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(pkt); err != nil {
					b.Fatal(err)
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
