package dnsfront

import (
	"net"

	"github.com/meridian-gslb/meridian/gslb"
	"testing"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary packets through the same steps the server
// takes (header check, unpack, handler) and checks every reply is a
// well-formed answer to the query within the transport's size limit.
func FuzzServeDNS(f *testing.F) {
	seed := func(name string, qtype uint16, edns int, mut func(*dns.Msg)) {
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		if edns > 0 {
			q.SetEdns0(uint16(edns), true)
		}
		if mut != nil {
			mut(q)
		}
		b, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	seed("www.example.test.", dns.TypeA, 0, nil)
	seed("WWW.example.TEST.", dns.TypeAAAA, 1232, nil)
	seed("big.example.test.", dns.TypeTXT, 4096, nil)
	seed("x.child.example.test.", dns.TypeA, 0, nil)
	seed("a.apps.example.test.", dns.TypeANY, 512, nil)
	seed("shop.example.test.", dns.TypeA, 1232, nil)
	seed("nope.example.test.", dns.TypeMX, 1232, nil)
	seed("version.bind.", dns.TypeTXT, 0, func(q *dns.Msg) { q.Question[0].Qclass = dns.ClassCHAOS })
	seed("www.example.test.", dns.TypeA, 1232, func(q *dns.Msg) {
		o := q.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{192, 0, 2, 0}})
	})
	seed("www.example.test.", dns.TypeA, 1232, func(q *dns.Msg) { q.IsEdns0().SetVersion(1) })
	seed("www.example.test.", dns.TypeA, 1232, func(q *dns.Msg) { q.Extra = append(q.Extra, q.Extra[0]) })
	seed("example.test.", dns.TypeSOA, 0, func(q *dns.Msg) { q.Opcode = dns.OpcodeNotify })
	seed("www.example.test.", dns.TypeA, 1232, func(q *dns.Msg) {
		o := q.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	})
	// An OPT whose option lengths overrun its RDATA: the full path's FORMERR,
	// never the fast path's answer.
	f.Add([]byte("\x30\x30\x01\x30\x00\x01\x00\x00\x00\x00\x00\x01\x07eXAmple\x04test\x00\x00\x01\x00\x01\x00\x00\x29\x30\x30\x00\x30\x30\x00\x0b00000000000"), false)
	f.Add([]byte{}, false)
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 'w', 'w'}, false)
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xc0, 0x0c, 0, 1, 0, 1}, true)

	seed("app.example.test.", dns.TypeA, 1232, func(q *dns.Msg) {
		o := q.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{198, 51, 100, 0}})
	})
	seed("App.Example.Test.", dns.TypeAAAA, 1232, func(q *dns.Msg) {
		o := q.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 2, SourceNetmask: 56, Address: net.ParseIP("2001:db8::")})
	})
	seed("app.example.test.", dns.TypeA, 0, nil)
	// ECS with a scope the option's family cannot have.
	f.Add([]byte("\x30\x30\x01\x30\x00\x01\x00\x00\x00\x00\x00\x01\x07eXAmple\x04test\x00\x30\x30\x00\x01\x00\x00\x29\x30\x30\x00\x30\x30\x00\x00\x0b\x00\x08\x00\x07\x00\x01\x18\x30000"), false)

	// The quickstart with its dynamic record, ECS on and every target up.
	health := gslb.NewHealthMap()
	h, e := gslbHandler(f, health)
	for _, id := range []string{"us-east/192.0.2.100", "us-east/192.0.2.101", "eu-west/198.51.100.100", "ap-northeast/203.0.113.100"} {
		health.Set(id, gslb.Up)
	}
	e.Refresh()
	f.Fuzz(func(t *testing.T, pkt []byte, overTCP bool) {
		udp := !overTCP
		// Both transports take the raw packet. Where the fast path
		// answers, the full path must give the same reply, except FORMERR
		// for a Client Subnet address of the wrong length, which only the
		// raw packet shows.
		if fast := h.fastAnswer(h.State(), new(scratch), pkt, testClient, udp); fast != nil && fast[3]&0xF != dns.RcodeFormatError {
			q := new(dns.Msg)
			if err := q.Unpack(pkt); err != nil {
				t.Fatalf("fast path answered a packet that does not unpack: %x", pkt)
			}
			compareReplies(t, "fuzz", fast, h.answer(h.State(), new(scratch), q, udp, testClient))
		}
		var req dns.Msg
		out := h.answerPacket(new(scratch), &req, pkt, testClient, udp)
		if out == nil {
			if len(pkt) >= 12 && pkt[2]&0x80 == 0 {
				t.Fatalf("no reply to a packet with a header and QR clear: %x", pkt)
			}
			return
		}
		limit := dns.MaxMsgSize
		if udp {
			limit = 512
			if opt := req.IsEdns0(); opt != nil {
				limit = min(max(int(opt.UDPSize()), 512), 1232)
			}
		}
		check(t, pkt, out, limit)
	})
}

// check asserts out is a well-formed reply to pkt within limit bytes.
func check(t *testing.T, pkt, out []byte, limit int) {
	t.Helper()
	if len(out) > limit {
		t.Fatalf("reply of %d bytes over limit %d", len(out), limit)
	}
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("reply does not unpack: %v\nquery: %x", err, pkt)
	}
	id := uint16(pkt[0])<<8 | uint16(pkt[1])
	if m.Id != id || !m.Response || m.RecursionAvailable {
		t.Fatalf("bad header id=%d (want %d) qr=%v ra=%v", m.Id, id, m.Response, m.RecursionAvailable)
	}
}
