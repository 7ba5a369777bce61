package dnsfront

import (
	"net/netip"

	"fmt"
	"github.com/meridian-gslb/meridian/gslb"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestFastPathMatchesFull holds the fast path to the full one: for every
// query it takes, its reply must be the full path's reply, record for
// record. The full path is what the table tests check against the RFCs.
func TestFastPathMatchesFull(t *testing.T) {
	h := quickstartHandler(t)
	names := []string{
		"example.test.", "www.example.test.", "mail.example.test.", "ns1.example.test.",
		"shop.example.test.", "x.apps.example.test.", "apps.example.test.", "path.to.example.test.",
		"deep.path.to.example.test.", "child.example.test.", "a.b.child.example.test.",
		"ns1.child.example.test.", "nope.example.test.", "big.example.test.", "api.example.test.",
		"_https._tcp.example.test.", "*.apps.example.test.", "example.org.", "test.",
	}
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeNS, dns.TypeSOA, dns.TypeTXT,
		dns.TypeSRV, dns.TypeCNAME, dns.TypeANY, dns.TypeDS, dns.TypePTR, 65000}
	ednsSizes := []int{0, 512, 600, 1232, 4096}
	rng := rand.New(rand.NewPCG(1, 2))
	taken := map[string]int{}
	for _, name := range names {
		for _, qt := range qtypes {
			for _, size := range ednsSizes {
				for _, do := range []bool{false, true} {
					q := new(dns.Msg)
					q.SetQuestion(randomCase(rng, name), qt)
					q.Id = uint16(rng.Uint32())
					q.RecursionDesired = rng.IntN(2) == 0
					q.CheckingDisabled = rng.IntN(2) == 0
					if size > 0 {
						q.SetEdns0(uint16(size), do)
						if rng.IntN(2) == 0 {
							o := q.IsEdns0()
							o.Option = append(o.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
						}
					} else if do {
						continue
					}
					pkt, err := q.Pack()
					if err != nil {
						t.Fatal(err)
					}
					fast := h.fastAnswer(h.State(), new(scratch), pkt, testClient, true)
					if fast == nil {
						continue
					}
					taken[name+" "+dns.TypeToString[qt]]++
					full := h.answer(h.State(), new(scratch), q, true, testClient)
					compareReplies(t, fmt.Sprintf("%s %s edns=%d do=%v", q.Question[0].Name, dns.TypeToString[qt], size, do), fast, full)
				}
			}
		}
	}
	// The fast path must actually carry the common answers, or this test
	// would pass by never comparing anything.
	for _, q := range []string{"www.example.test. A", "nope.example.test. A", "www.example.test. MX",
		"path.to.example.test. A", "a.b.child.example.test. A", "example.test. NS", "shop.example.test. CNAME", "example.org. A"} {
		if taken[q] == 0 {
			t.Errorf("fast path never answered %s", q)
		}
	}
	// CNAME chains and wildcard answers are built per query.
	for _, q := range []string{"shop.example.test. A", "x.apps.example.test. A", "big.example.test. TXT"} {
		if taken[q] != 0 {
			t.Errorf("fast path answered %s, which needs the full path", q)
		}
	}
}

// TestFastPathDeclines lists packets the fast path must leave alone.
func TestFastPathDeclines(t *testing.T) {
	h := quickstartHandler(t)
	base := func(mut func(*dns.Msg)) []byte {
		q := new(dns.Msg)
		q.SetQuestion("www.example.test.", dns.TypeA)
		mut(q)
		b, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := map[string][]byte{
		"EDNS version 1": base(func(q *dns.Msg) { q.SetEdns0(1232, false); q.IsEdns0().SetVersion(1) }),
		"NOTIFY":         base(func(q *dns.Msg) { q.Opcode = dns.OpcodeNotify }),
		"two questions":  base(func(q *dns.Msg) { q.Question = append(q.Question, q.Question[0]) }),
		"CHAOS":          base(func(q *dns.Msg) { q.Question[0].Qclass = dns.ClassCHAOS }),
		"escaped label":  base(func(q *dns.Msg) { q.Question[0].Name = `w\.w.example.test.` }),
		"AXFR":           base(func(q *dns.Msg) { q.Question[0].Qtype = dns.TypeAXFR }),
		"two OPT":        base(func(q *dns.Msg) { q.SetEdns0(1232, false); q.Extra = append(q.Extra, q.Extra[0]) }),
		"answer in a query": base(func(q *dns.Msg) {
			q.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeA, Class: dns.ClassINET}}}
		}),
		"too big for 512": base(func(q *dns.Msg) { q.Question[0].Name = "big.example.test."; q.Question[0].Qtype = dns.TypeTXT }),
	}
	tests["unknown option"] = base(func(q *dns.Msg) {
		q.SetEdns0(1232, false)
		o := q.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1}})
	})
	pkt := base(func(*dns.Msg) {})
	tests["trailing garbage"] = append(pkt[:len(pkt):len(pkt)], 0xFF)
	for name, pkt := range tests {
		if out := h.fastAnswer(h.State(), new(scratch), pkt, testClient, true); out != nil {
			t.Errorf("%s: fast path answered", name)
		}
	}
}

func randomCase(rng *rand.Rand, s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' && rng.IntN(2) == 0 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func compareReplies(t *testing.T, what string, fast, full []byte) {
	t.Helper()
	var a, b dns.Msg
	if err := a.Unpack(fast); err != nil {
		t.Fatalf("%s: fast reply does not unpack: %v", what, err)
	}
	if err := b.Unpack(full); err != nil {
		t.Fatalf("%s: full reply does not unpack: %v", what, err)
	}
	if a.MsgHdr != b.MsgHdr {
		t.Errorf("%s: header\nfast %+v\nfull %+v", what, a.MsgHdr, b.MsgHdr)
	}
	// Names are compressed alike. The one difference: a reply without
	// answers (NXDOMAIN, NODATA, a referral) is prepared once for every
	// name it serves, so where the question's own name appears in its
	// records (a server asked about itself), the full path points it at
	// the question and the fast path writes its first label.
	if slack := 0; len(b.Answer) == 0 {
		slack = 8
		if len(fast) < len(full) || len(fast) > len(full)+slack {
			t.Errorf("%s: fast reply %d bytes, full %d", what, len(fast), len(full))
		}
	} else if len(fast) != len(full) {
		t.Errorf("%s: fast reply %d bytes, full %d", what, len(fast), len(full))
	}
	if len(a.Question) != 1 || len(b.Question) != 1 || a.Question[0] != b.Question[0] {
		t.Errorf("%s: question fast %v full %v", what, a.Question, b.Question)
	}
	// Names compare case-insensitively (RFC 4343): the full path's
	// compression may point other names into the question's spelling.
	for _, sec := range []struct {
		name string
		x, y []dns.RR
	}{{"answer", a.Answer, b.Answer}, {"authority", a.Ns, b.Ns}, {"additional", a.Extra, b.Extra}} {
		xs, ys := rrLines(sec.x), rrLines(sec.y)
		if !strings.EqualFold(xs, ys) {
			t.Errorf("%s: %s section\nfast %s\nfull %s", what, sec.name, xs, ys)
		}
	}
	// Answer owners, though, keep the query's spelling exactly.
	for i := range a.Answer {
		if i < len(b.Answer) && a.Answer[i].Header().Name != b.Answer[i].Header().Name {
			t.Errorf("%s: answer owner fast %q full %q", what, a.Answer[i].Header().Name, b.Answer[i].Header().Name)
		}
	}
}

func rrLines(rrs []dns.RR) string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return strings.Join(out, " | ")
}

// TestFastDynamicMatchesFull holds the fast path's dynamic answers and ECS
// handling to the full path's, for many clients and health states.
func TestFastDynamicMatchesFull(t *testing.T) {
	health := gslb.NewHealthMap()
	h, e := gslbHandler(t, health)
	all := []string{"us-east/192.0.2.100", "us-east/192.0.2.101", "eu-west/198.51.100.100", "ap-northeast/203.0.113.100"}
	healthStates := map[string][]string{"all up": all, "eu-west down": {all[0], all[1], all[3]}, "all down": nil}
	subnets := []string{"", "198.51.100.0/24", "203.0.113.128/25", "192.0.2.0/24", "10.0.0.0/8", "2001:db8::/56", "198.51.100.7/32"}
	sources := []string{"127.0.0.1", "198.51.100.53", "2001:db8::1"}
	taken := 0
	for hname, up := range healthStates {
		for _, id := range all {
			health.Set(id, gslb.Down)
		}
		for _, id := range up {
			health.Set(id, gslb.Up)
		}
		e.Refresh()
		for _, name := range []string{"app.example.test.", "APP.example.test.", "www.example.test."} {
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeHTTPS} {
				for _, subnet := range subnets {
					for _, src := range sources {
						q := withECS(name, qt, subnet)
						pkt, err := q.Pack()
						if err != nil {
							t.Fatal(err)
						}
						client := netip.MustParseAddr(src)
						fast := h.fastAnswer(h.State(), new(scratch), pkt, client, true)
						if fast == nil {
							continue
						}
						taken++
						full := h.answer(h.State(), new(scratch), q, true, client)
						what := hname + " " + name + " " + dns.TypeToString[qt] + " ecs=" + subnet + " src=" + src
						compareReplies(t, what, fast, full)
						fm, fu := new(dns.Msg), new(dns.Msg)
						fm.Unpack(fast)
						fu.Unpack(full)
						a, b := replyECS(fm), replyECS(fu)
						if (a == nil) != (b == nil) || (a != nil && (a.String() != b.String() || a.SourceScope != b.SourceScope)) {
							t.Errorf("%s: ECS fast %v full %v", what, a, b)
						}
					}
				}
			}
		}
	}
	if taken < 100 {
		t.Fatalf("fast path took only %d of the queries", taken)
	}
}

// TestFastPathDeclinesBadECS: an invalid Client Subnet is never answered
// by the fast path (the full path gives FORMERR).
func TestFastPathDeclinesBadECS(t *testing.T) {
	h, _ := gslbHandler(t, gslb.NewHealthMap())
	// Raw option data (EDNS0_LOCAL with the ECS code), since miekg/dns
	// would not pack most of these.
	for name, data := range map[string][]byte{
		"bits past prefix":        {0, 1, 20, 0, 192, 0, 2},
		"family 3":                {0, 3, 8, 0, 192},
		"family 0 (no tailoring)": {0, 0, 0, 0},
		"source longer than IPv4": {0, 1, 33, 0, 192, 0, 2, 0, 0},
		"truncated option":        {0, 1},
	} {
		opt := &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: data}
		q := withECS("app.example.test.", dns.TypeA, "")
		q.IsEdns0().Option = append(q.IsEdns0().Option, opt)
		pkt, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if out := h.fastAnswer(h.State(), new(scratch), pkt, testClient, true); out != nil {
			t.Errorf("%s: fast path answered", name)
		}
	}
}

// TestECSAddressLength: a Client Subnet address with more or fewer octets
// than its source prefix needs is FORMERR (RFC 7871 6 and 7.1.2), with an
// OPT and no ECS in the reply.
func TestECSAddressLength(t *testing.T) {
	h, _ := gslbHandler(t, gslb.NewHealthMap())
	for name, data := range map[string][]byte{
		"/24 with two octets": {0, 1, 24, 0, 198, 51},
		"/8 with two octets":  {0, 1, 8, 0, 198, 0},
		"/56 with six octets": {0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0},
	} {
		q := withECS("app.example.test.", dns.TypeA, "")
		q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: data})
		pkt, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		var req dns.Msg
		m := new(dns.Msg)
		if err := m.Unpack(h.answerPacket(new(scratch), &req, pkt, testClient, true)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Rcode != dns.RcodeFormatError || m.Id != q.Id || m.IsEdns0() == nil || replyECS(m) != nil || len(m.Answer) != 0 {
			t.Errorf("%s: got %v", name, m)
		}
	}
}
