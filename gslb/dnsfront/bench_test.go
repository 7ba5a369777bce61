package dnsfront

import (
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkServeDNS measures the query path from an unpacked query to the
// packed reply, for the answers the issue names. Run with -benchmem: the
// static answers should not allocate beyond what miekg/dns's packer does.
func BenchmarkServeDNS(b *testing.B) {
	h := quickstartHandler(b)
	for _, bc := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"static_A", "www.example.test.", dns.TypeA},
		{"static_A_mixed_case", "WWW.Example.Test.", dns.TypeA},
		{"nxdomain", "nope.example.test.", dns.TypeA},
		{"referral", "host.child.example.test.", dns.TypeA},
		{"wildcard", "x.apps.example.test.", dns.TypeA},
		{"cname_chase", "shop.example.test.", dns.TypeA},
		{"refused", "example.org.", dns.TypeA},
	} {
		b.Run(bc.name, func(b *testing.B) {
			q := new(dns.Msg)
			q.SetQuestion(bc.qname, bc.qtype)
			q.SetEdns0(1232, false)
			rec := &recorder{remote: udpClient, out: make([]byte, 0, 4096)}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeDNS(rec, q)
			}
		})
	}
}

// BenchmarkAnswerPacket measures what the UDP loop does per packet between
// the read and the write: header checks, unpack, answer, pack.
func BenchmarkAnswerPacket(b *testing.B) {
	h := quickstartHandler(b)
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	q.SetEdns0(1232, false)
	pkt, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	s := new(scratch)
	var req dns.Msg
	b.ReportAllocs()
	for b.Loop() {
		if h.answerPacket(s, &req, pkt) == nil {
			b.Fatal("no answer")
		}
	}
}
