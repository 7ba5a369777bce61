package dnsfront

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/examples"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/miekg/dns"
)

var (
	testClient = netip.MustParseAddr("127.0.0.9")
	udpClient  = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 40000}
	tcpClient  = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 40000}
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// quickstartHandler serves the embedded quickstart, the zone README users query.
func quickstartHandler(t testing.TB) *Handler {
	t.Helper()
	cfg, err := config.LoadFS(examples.Quickstart, examples.QuickstartConfig)
	if err != nil {
		t.Fatal(err)
	}
	set, err := cfg.LoadZones()
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(&State{Zones: set, UDPSize: 1232, Chaos: true, Identity: "ns-test", Version: "meridian test"}, discard())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// respond packs q and answers it the way the UDP and TCP loops do, as if
// it came from client (a *net.UDPAddr or *net.TCPAddr); nil means no reply.
func respond(t testing.TB, h *Handler, q *dns.Msg, client net.Addr) []byte {
	t.Helper()
	pkt, err := q.Pack()
	if err != nil {
		t.Fatalf("pack query: %v", err)
	}
	_, udp := client.(*net.UDPAddr)
	var req dns.Msg
	return h.answerPacket(new(scratch), &req, pkt, testClient, udp)
}

// exchange is respond with the reply unpacked.
func exchange(t testing.TB, h *Handler, q *dns.Msg, client net.Addr) *dns.Msg {
	t.Helper()
	out := respond(t, h, q, client)
	if out == nil {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	return m
}

// testCase describes a query and the whole reply expected, records written
// as zone-file lines (compared as sets per section, OPT left out).
type testCase struct {
	name    string
	qname   string
	qtype   uint16
	qclass  uint16 // 0 = IN
	edns    int    // advertised UDP size; 0 = no OPT
	client  net.Addr
	mutate  func(*dns.Msg)
	rcode   int
	aa, tc  bool
	noReply bool
	answer  []string
	ns      []string
	extra   []string
	optSize int // expected advertised size in the reply's OPT; 0 = no OPT expected
}

func (tc testCase) query() *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(tc.qname, tc.qtype)
	q.Id = 4242
	if tc.qclass != 0 {
		q.Question[0].Qclass = tc.qclass
	}
	if tc.edns != 0 {
		q.SetEdns0(uint16(tc.edns), false)
	}
	if tc.mutate != nil {
		tc.mutate(q)
	}
	return q
}

func rrStrings(t testing.TB, rrs []dns.RR) []string {
	t.Helper()
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(out)
	return out
}

func normalize(t testing.TB, lines []string) []string {
	t.Helper()
	var out []string
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("bad expected record %q: %v", l, err)
		}
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(out)
	return out
}

func checkReply(t *testing.T, tc testCase, q, m *dns.Msg) {
	t.Helper()
	if tc.noReply {
		if m != nil {
			t.Fatalf("want no reply, got\n%v", m)
		}
		return
	}
	if m == nil {
		t.Fatal("no reply")
	}
	if m.Id != q.Id || !m.Response {
		t.Errorf("id %d response %v, want id %d response true", m.Id, m.Response, q.Id)
	}
	if m.Rcode != tc.rcode {
		t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
	}
	if m.Authoritative != tc.aa {
		t.Errorf("aa %v, want %v", m.Authoritative, tc.aa)
	}
	if m.Truncated != tc.tc {
		t.Errorf("tc %v, want %v", m.Truncated, tc.tc)
	}
	if m.RecursionAvailable {
		t.Error("ra set: Meridian never recurses")
	}
	if m.Rcode == dns.RcodeNotImplemented {
		// RFC 8906: QR, the opcode and the rcode, none of the query's flags.
		if m.RecursionDesired || m.CheckingDisabled || m.Opcode != q.Opcode {
			t.Errorf("NOTIMP: rd %v cd %v opcode %d, want no flags and opcode %d", m.RecursionDesired, m.CheckingDisabled, m.Opcode, q.Opcode)
		}
	} else if m.RecursionDesired != q.RecursionDesired {
		t.Errorf("rd %v not copied from the query (%v)", m.RecursionDesired, q.RecursionDesired)
	}
	if len(q.Question) == 1 && (len(m.Question) != 1 || m.Question[0] != q.Question[0]) {
		t.Errorf("question %v, want %v exactly (case kept)", m.Question, q.Question)
	}
	for _, sec := range []struct {
		name      string
		got, want []string
	}{
		{"answer", rrStrings(t, m.Answer), normalize(t, tc.answer)},
		{"authority", rrStrings(t, m.Ns), normalize(t, tc.ns)},
		{"additional", rrStrings(t, m.Extra), normalize(t, tc.extra)},
	} {
		if !slices.Equal(sec.got, sec.want) {
			t.Errorf("%s section:\n got %q\nwant %q", sec.name, sec.got, sec.want)
		}
	}
	opt := m.IsEdns0()
	switch {
	case tc.optSize == 0 && opt != nil:
		t.Errorf("unexpected OPT in reply: %v", opt)
	case tc.optSize != 0 && opt == nil:
		t.Error("reply has no OPT")
	case opt != nil:
		if int(opt.UDPSize()) != tc.optSize {
			t.Errorf("OPT advertises %d, want %d", opt.UDPSize(), tc.optSize)
		}
		if opt.Version() != 0 {
			t.Errorf("OPT version %d, want 0", opt.Version())
		}
	}
}

const (
	soaNeg = "example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 2026112501 7200 3600 1209600 300"
)

func TestAnswers(t *testing.T) {
	h := quickstartHandler(t)
	tests := []testCase{
		{name: "static A", qname: "www.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"www.example.test. 300 IN A 192.0.2.10", "www.example.test. 300 IN A 192.0.2.11"}},
		{name: "case kept in question and owner", qname: "WwW.ExAmPlE.TeSt.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"WwW.ExAmPlE.TeSt. 300 IN A 192.0.2.10", "WwW.ExAmPlE.TeSt. 300 IN A 192.0.2.11"}},
		{name: "AAAA", qname: "www.example.test.", qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"www.example.test. 300 IN AAAA 2001:db8::10"}},
		{name: "MX with additional address", qname: "example.test.", qtype: dns.TypeMX, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"example.test. 300 IN MX 10 mail.example.test."},
			extra:  []string{"mail.example.test. 300 IN A 192.0.2.25"}},
		{name: "inline SRV from config", qname: "_https._tcp.example.test.", qtype: dns.TypeSRV, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"_https._tcp.example.test. 300 IN SRV 10 5 443 www.example.test."},
			extra:  []string{"www.example.test. 300 IN A 192.0.2.10", "www.example.test. 300 IN A 192.0.2.11", "www.example.test. 300 IN AAAA 2001:db8::10"}},
		{name: "NXDOMAIN with negative SOA", qname: "nope.example.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			ns: []string{soaNeg}},
		{name: "NODATA", qname: "www.example.test.", qtype: dns.TypeMX, rcode: dns.RcodeSuccess, aa: true,
			ns: []string{soaNeg}},
		{name: "empty non-terminal is NODATA", qname: "path.to.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			ns: []string{soaNeg}},
		{name: "CNAME chased", qname: "shop.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"shop.example.test. 300 IN CNAME www.example.test.", "www.example.test. 300 IN A 192.0.2.10", "www.example.test. 300 IN A 192.0.2.11"}},
		{name: "wildcard", qname: "Anything.apps.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"Anything.apps.example.test. 300 IN A 192.0.2.80"}},
		{name: "wildcard NODATA", qname: "x.apps.example.test.", qtype: dns.TypeTXT, rcode: dns.RcodeSuccess, aa: true,
			ns: []string{soaNeg}},
		{name: "referral below the cut", qname: "host.child.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			ns:    []string{"child.example.test. 300 IN NS ns1.child.example.test.", "child.example.test. 300 IN NS ns2.child.example.test."},
			extra: []string{"ns1.child.example.test. 300 IN A 192.0.2.153", "ns2.child.example.test. 300 IN A 192.0.2.154"}},
		{name: "referral at the cut", qname: "child.example.test.", qtype: dns.TypeNS, rcode: dns.RcodeSuccess,
			ns:    []string{"child.example.test. 300 IN NS ns1.child.example.test.", "child.example.test. 300 IN NS ns2.child.example.test."},
			extra: []string{"ns1.child.example.test. 300 IN A 192.0.2.153", "ns2.child.example.test. 300 IN A 192.0.2.154"}},
		{name: "ANY gives one RRset", qname: "www.example.test.", qtype: dns.TypeANY, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"www.example.test. 300 IN A 192.0.2.10", "www.example.test. 300 IN A 192.0.2.11"}},
		{name: "not our zone", qname: "example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "parent of our zone", qname: "test.", qtype: dns.TypeSOA, rcode: dns.RcodeRefused},
		{name: "zone transfer refused", qname: "example.test.", qtype: dns.TypeAXFR, client: tcpClient, rcode: dns.RcodeRefused},
		{name: "chaos version.bind", qname: "version.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{`version.bind. 0 CH TXT "meridian test"`}},
		{name: "chaos id.server", qname: "ID.SERVER.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{`ID.SERVER. 0 CH TXT "ns-test"`}},
		{name: "chaos unknown name", qname: "authors.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, rcode: dns.RcodeRefused},
		{name: "class HESIOD refused", qname: "www.example.test.", qtype: dns.TypeA, qclass: dns.ClassHESIOD, rcode: dns.RcodeRefused},

		// EDNS (RFC 6891)
		{name: "EDNS echoed, payload capped at ours", qname: "www.example.test.", qtype: dns.TypeA, edns: 4096, rcode: dns.RcodeSuccess, aa: true, optSize: 1232,
			answer: []string{"www.example.test. 300 IN A 192.0.2.10", "www.example.test. 300 IN A 192.0.2.11"}},
		{name: "EDNS smaller client payload", qname: "www.example.test.", qtype: dns.TypeA, edns: 800, rcode: dns.RcodeSuccess, aa: true, optSize: 800,
			answer: []string{"www.example.test. 300 IN A 192.0.2.10", "www.example.test. 300 IN A 192.0.2.11"}},
		{name: "EDNS on NXDOMAIN", qname: "nope.example.test.", qtype: dns.TypeA, edns: 1232, rcode: dns.RcodeNameError, aa: true, optSize: 1232,
			ns: []string{soaNeg}},
		{name: "EDNS version 1 is BADVERS", qname: "www.example.test.", qtype: dns.TypeA, edns: 1232, optSize: 1232, rcode: dns.RcodeBadVers,
			mutate: func(q *dns.Msg) { q.IsEdns0().SetVersion(1) }},
		{name: "unknown EDNS option ignored", qname: "www.example.test.", qtype: dns.TypeA, edns: 1232, rcode: dns.RcodeSuccess, aa: true, optSize: 1232,
			mutate: func(q *dns.Msg) {
				o := q.IsEdns0()
				o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2, 3}})
			},
			answer: []string{"www.example.test. 300 IN A 192.0.2.10", "www.example.test. 300 IN A 192.0.2.11"}},
		{name: "two OPT records is FORMERR", qname: "www.example.test.", qtype: dns.TypeA, edns: 1232, rcode: dns.RcodeFormatError,
			mutate: func(q *dns.Msg) { q.Extra = append(q.Extra, q.Extra[0]) }},
		{name: "OPT not at root is FORMERR", qname: "www.example.test.", qtype: dns.TypeA, edns: 1232, rcode: dns.RcodeFormatError,
			mutate: func(q *dns.Msg) { q.IsEdns0().Hdr.Name = "example.test." }},

		// Malformed and unsupported queries
		{name: "no question is FORMERR", qname: "www.example.test.", qtype: dns.TypeA, rcode: dns.RcodeFormatError,
			mutate: func(q *dns.Msg) { q.Question = nil }},
		{name: "two questions is FORMERR", qname: "www.example.test.", qtype: dns.TypeA, rcode: dns.RcodeFormatError,
			mutate: func(q *dns.Msg) { q.Question = append(q.Question, q.Question[0]) }},
		{name: "answer section in a query is FORMERR", qname: "www.example.test.", qtype: dns.TypeA, rcode: dns.RcodeFormatError,
			mutate: func(q *dns.Msg) {
				q.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(1, 2, 3, 4)}}
			}},
		{name: "NOTIFY is NOTIMP", qname: "example.test.", qtype: dns.TypeSOA, rcode: dns.RcodeNotImplemented,
			mutate: func(q *dns.Msg) { q.Opcode = dns.OpcodeNotify }},
		{name: "UPDATE is NOTIMP", qname: "example.test.", qtype: dns.TypeSOA, rcode: dns.RcodeNotImplemented,
			mutate: func(q *dns.Msg) { q.Opcode = dns.OpcodeUpdate }},
		{name: "opcode 15 with RD and CD is NOTIMP without them", qname: "example.test.", qtype: dns.TypeSOA, rcode: dns.RcodeNotImplemented,
			mutate: func(q *dns.Msg) { q.Opcode, q.RecursionDesired, q.CheckingDisabled = 15, true, true }},
		{name: "IXFR with the client's SOA is refused, not FORMERR", qname: "example.test.", qtype: dns.TypeIXFR, rcode: dns.RcodeRefused,
			mutate: func(q *dns.Msg) {
				q.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET},
					Ns: "ns1.example.test.", Mbox: "hostmaster.example.test.", Serial: 1}}
			}},
		{name: "a response is not answered", qname: "www.example.test.", qtype: dns.TypeA, noReply: true,
			mutate: func(q *dns.Msg) { q.Response = true }},
		{name: "rd=0 copied", qname: "www.example.test.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			mutate: func(q *dns.Msg) { q.RecursionDesired = false },
			answer: []string{"www.example.test. 300 IN A 192.0.2.10", "www.example.test. 300 IN A 192.0.2.11"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := tc.client
			if client == nil {
				client = udpClient
			}
			q := tc.query()
			checkReply(t, tc, q, exchange(t, h, q, client))
		})
	}
}

func TestChaosSwitchedOff(t *testing.T) {
	h := quickstartHandler(t)
	st := *h.State()
	st.Chaos = false
	if err := h.Store(&st); err != nil {
		t.Fatal(err)
	}
	tc := testCase{qname: "version.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, rcode: dns.RcodeRefused}
	q := tc.query()
	checkReply(t, tc, q, exchange(t, h, q, udpClient))
}

// TestTruncation checks that an answer too large for the client's UDP limit
// drops whole RRsets and sets TC, and that TCP carries all of it.
func TestTruncation(t *testing.T) {
	h := quickstartHandler(t)
	tests := []struct {
		name      string
		edns      int
		client    net.Addr
		tc        bool
		answers   int
		maxLength int
	}{
		{name: "no EDNS: 512 bytes", client: udpClient, tc: true, answers: 0, maxLength: 512},
		{name: "EDNS 1232", edns: 1232, client: udpClient, tc: true, answers: 0, maxLength: 1232},
		{name: "EDNS 4096 capped at our 1232", edns: 4096, client: udpClient, tc: true, answers: 0, maxLength: 1232},
		{name: "TCP gets everything", client: tcpClient, tc: false, answers: 24, maxLength: dns.MaxMsgSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := new(dns.Msg)
			q.SetQuestion("big.example.test.", dns.TypeTXT)
			if tt.edns != 0 {
				q.SetEdns0(uint16(tt.edns), false)
			}
			out := respond(t, h, q, tt.client)
			if len(out) > tt.maxLength {
				t.Fatalf("reply is %d bytes, limit %d", len(out), tt.maxLength)
			}
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("truncated reply is broken: %v", err)
			}
			if m.Truncated != tt.tc || len(m.Answer) != tt.answers {
				t.Fatalf("tc=%v answers=%d, want tc=%v answers=%d", m.Truncated, len(m.Answer), tt.tc, tt.answers)
			}
			if (tt.edns != 0) != (m.IsEdns0() != nil) {
				t.Errorf("OPT presence %v, want %v (OPT survives truncation)", m.IsEdns0() != nil, tt.edns != 0)
			}
			if !m.Authoritative || m.Rcode != dns.RcodeSuccess {
				t.Errorf("aa=%v rcode=%s", m.Authoritative, dns.RcodeToString[m.Rcode])
			}
		})
	}
}

// TestTruncateKeepsWholeRRsets drives truncate directly with two RRsets
// where only the first fits: the second must go entirely.
func TestTruncateKeepsWholeRRsets(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeANY)
	for i := 0; i < 10; i++ {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "a.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, byte(i))})
	}
	for i := 0; i < 10; i++ {
		m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: "a.example.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{strings.Repeat("x", 40)}})
	}
	m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns.example.test."}}
	m.Compress = true
	truncate(m, 300, false)
	if !m.Truncated {
		t.Fatal("TC not set")
	}
	if len(m.Ns) != 0 || len(m.Answer) != 10 {
		t.Fatalf("kept %d answers, %d authority; want the 10 A records only", len(m.Answer), len(m.Ns))
	}
	for _, rr := range m.Answer {
		if rr.Header().Rrtype != dns.TypeA {
			t.Fatalf("partial TXT RRset kept: %v", rr)
		}
	}
	if m.Len() > 300 {
		t.Fatalf("still %d bytes", m.Len())
	}
}

// TestReferralGlueTruncation: dropping glue from a referral must set TC
// (RFC 9471), while dropping other additional data must not.
func TestReferralGlueTruncation(t *testing.T) {
	for _, referral := range []bool{true, false} {
		m := new(dns.Msg)
		m.SetQuestion("x.child.example.test.", dns.TypeA)
		m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "child.example.test.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns1.child.example.test."}}
		for i := 0; i < 30; i++ {
			m.Extra = append(m.Extra, &dns.AAAA{Hdr: dns.RR_Header{Name: "ns1.child.example.test.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60}, AAAA: net.ParseIP("2001:db8::1").To16()})
			m.Extra[i].(*dns.AAAA).AAAA[15] = byte(i)
		}
		truncate(m, 512, referral)
		if m.Truncated != referral {
			t.Errorf("referral=%v: tc=%v", referral, m.Truncated)
		}
		if len(m.Ns) != 1 || len(m.Extra) != 0 {
			t.Errorf("referral=%v: ns=%d extra=%d, want 1 and 0", referral, len(m.Ns), len(m.Extra))
		}
	}
}

// TestScratchReuse answers queries one after another with the same
// scratch memory, as the UDP loop does: nothing of one reply may leak into
// the next.
func TestScratchReuse(t *testing.T) {
	h := quickstartHandler(t)
	s := new(scratch)
	ask := func(name string, qtype, qclass uint16) *dns.Msg {
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		q.Question[0].Qclass = qclass
		q.SetEdns0(1232, false)
		m := new(dns.Msg)
		if err := m.Unpack(h.answer(h.State(), s, q, true, testClient)); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := ask("example.test.", dns.TypeMX, dns.ClassINET); len(m.Extra) != 2 {
		t.Fatalf("MX: want address and OPT in additional, got %v", m.Extra)
	}
	for _, next := range []struct {
		name   string
		qclass uint16
		rcode  int
	}{
		{"authors.bind.", dns.ClassCHAOS, dns.RcodeRefused},
		{"example.org.", dns.ClassINET, dns.RcodeRefused},
		{"www.example.test.", dns.ClassHESIOD, dns.RcodeRefused},
		{"nope.example.test.", dns.ClassINET, dns.RcodeNameError},
	} {
		ask("example.test.", dns.TypeMX, dns.ClassINET)
		m := ask(next.name, dns.TypeTXT, next.qclass)
		if m.Rcode != next.rcode || len(m.Answer) != 0 || len(m.Extra) != 1 || m.IsEdns0() == nil {
			t.Errorf("%s after MX: rcode %s, answer %v, additional %v; want %s and only OPT",
				next.name, dns.RcodeToString[m.Rcode], m.Answer, m.Extra, dns.RcodeToString[next.rcode])
		}
	}
}

// TestPanicBecomesServfail breaks the published state on purpose (no wire
// table) so answering panics: the query gets SERVFAIL, the panic is logged,
// and the next query is still answered.
func TestPanicBecomesServfail(t *testing.T) {
	var logs strings.Builder
	h := quickstartHandler(t)
	h.log = slog.New(slog.NewTextHandler(&logs, nil))
	st := *h.State()
	st.wire = nil
	h.state.Store(&st)

	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	pkt, _ := q.Pack()
	var req dns.Msg
	m := new(dns.Msg)
	if err := m.Unpack(h.answerPacket(new(scratch), &req, pkt, testClient, true)); err != nil {
		t.Fatal(err)
	}
	if m.Rcode != dns.RcodeServerFailure || m.Id != q.Id {
		t.Fatalf("rcode %s id %d, want SERVFAIL for id %d", dns.RcodeToString[m.Rcode], m.Id, q.Id)
	}
	if !strings.Contains(logs.String(), "panic while answering") {
		t.Fatalf("panic not logged: %q", logs.String())
	}
	// The full path does not use the wire table: CHAOS is still answered.
	q.SetQuestion("id.server.", dns.TypeTXT)
	q.Question[0].Qclass = dns.ClassCHAOS
	pkt, _ = q.Pack()
	if err := m.Unpack(h.answerPacket(new(scratch), &req, pkt, testClient, true)); err != nil || m.Rcode != dns.RcodeSuccess {
		t.Fatalf("after a panic: %v %v", err, m)
	}
}

// TestMalformedCorners: packets an EDNS compliance run sends, answered as
// the RFCs say, on both transports.
func TestMalformedCorners(t *testing.T) {
	h := quickstartHandler(t)
	www := func(edns bool) []byte {
		q := new(dns.Msg)
		q.SetQuestion("www.example.test.", dns.TypeA)
		if edns {
			q.SetEdns0(1232, false)
		}
		p, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	badOption := www(true)
	badOption[len(badOption)-1] = 4                       // OPT rdlen 4: one option header...
	badOption = append(badOption, 0, dns.EDNS0NSID, 0, 9) // ...announcing 9 bytes that are not there
	for _, tt := range []struct {
		name     string
		pkt      []byte
		rcode    int
		question bool
		opt      bool
	}{
		{"a question cut off after its name", www(false)[:len(www(false))-4], dns.RcodeFormatError, false, false},
		{"a question cut off in its class", www(false)[:len(www(false))-1], dns.RcodeFormatError, false, false},
		{"an option longer than the OPT record", badOption, dns.RcodeFormatError, true, true},
	} {
		for _, udp := range []bool{true, false} {
			out := h.answerPacket(new(scratch), new(dns.Msg), tt.pkt, netip.MustParseAddr("192.0.2.1"), udp)
			var m dns.Msg
			if err := m.Unpack(out); err != nil {
				t.Fatalf("%s (udp %v): reply does not unpack: %v", tt.name, udp, err)
			}
			if m.Rcode != tt.rcode || (len(m.Question) > 0) != tt.question || (m.IsEdns0() != nil) != tt.opt {
				t.Errorf("%s (udp %v): %s question %v opt %v, want %s %v %v", tt.name, udp, dns.RcodeToString[m.Rcode],
					m.Question, m.IsEdns0() != nil, dns.RcodeToString[tt.rcode], tt.question, tt.opt)
			}
		}
	}
}
