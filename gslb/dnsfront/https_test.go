package dnsfront

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/examples"
	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/miekg/dns"
)

// TestHTTPSFollowsTheDecision asks the quickstart's app.example.test for
// HTTPS and A from the same clients: the hint is the A answer, the ECS
// scope the A answer's, alpn the answering pool's.
func TestHTTPSFollowsTheDecision(t *testing.T) {
	health := gslb.NewHealthMap()
	for _, id := range []string{"us-east/192.0.2.100", "us-east/192.0.2.101", "eu-west/198.51.100.100", "ap-northeast/203.0.113.100"} {
		health.Set(id, gslb.Up)
	}
	h, e := gslbHandler(t, health)
	e.Refresh()
	ask := func(qtype uint16, subnet string) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		if err := m.Unpack(respondPacket(t, h, withECS("App.Example.Test.", qtype, subnet))); err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		subnet string
		want   string
	}{
		{"198.51.100.0/24", `App.Example.Test.	30	IN	HTTPS	1 . alpn="h2,h3" port="443" ipv4hint="198.51.100.100"`},
		{"203.0.113.0/24", `App.Example.Test.	30	IN	HTTPS	1 . alpn="h2" port="443" ipv4hint="203.0.113.100"`},
		{"192.0.2.0/24", `App.Example.Test.	30	IN	HTTPS	1 . alpn="h2,h3" port="443" ipv4hint="192.0.2.100,192.0.2.101"`},
		{"10.1.0.0/16", `App.Example.Test.	30	IN	HTTPS	1 . alpn="h2,h3" port="443" ipv4hint="192.0.2.100,192.0.2.101"`},
	}
	for _, tt := range tests {
		t.Run(tt.subnet, func(t *testing.T) {
			m := ask(dns.TypeHTTPS, tt.subnet)
			if len(m.Answer) != 1 || m.Answer[0].String() != tt.want || !m.Authoritative {
				t.Fatalf("answer %v, want %s", m.Answer, tt.want)
			}
			a := ask(dns.TypeA, tt.subnet)
			hint := m.Answer[0].(*dns.HTTPS).Value[2].(*dns.SVCBIPv4Hint)
			if len(hint.Hint) != len(a.Answer) {
				t.Fatalf("hints %v, A answer %v", hint.Hint, a.Answer)
			}
			for i, rr := range a.Answer {
				if !rr.(*dns.A).A.Equal(hint.Hint[i]) {
					t.Errorf("hint %d is %v, A answer %v", i, hint.Hint[i], rr)
				}
			}
			if got, want := replyECS(m).SourceScope, replyECS(a).SourceScope; got != want {
				t.Errorf("HTTPS scope /%d, A scope /%d", got, want)
			}
		})
	}
}

// TestHTTPSBothFamilies gives a name an A and an AAAA record: the HTTPS
// answer hints both, with the shorter TTL and the narrower scope, and
// the AAAA record's fail mode does not fail the HTTPS answer.
func TestHTTPSBothFamilies(t *testing.T) {
	src := readQuickstart(t) + `
[[record]]
name = "dual.example.test"
type = "A"
ttl = 60
policy = "geo"
https = { alpn = ["h2"] }
[record.geo]
default = ["us-east"]
[[record.pool]]
region = "us-east"
check = { type = "none" }
[[record.pool.target]]
address = "192.0.2.200"
[[record.pool]]
region = "eu-west"
check = { type = "none" }
[[record.pool.target]]
address = "198.51.100.200"

[[record]]
name = "dual.example.test"
type = "AAAA"
ttl = 20
policy = "failover"
[[record.pool]]
region = "eu-west"
check = { type = "none" }
[[record.pool.target]]
address = "2001:db8::200"
`
	cfg, err := config.Parse(examples.QuickstartConfig, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	cfg.FS = examples.Quickstart
	h, _ := handlerFor(t, cfg, gslb.NewHealthMap())
	q := withECS("dual.example.test.", dns.TypeHTTPS, "198.51.100.0/24")
	pkt, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddr("127.0.0.1")
	fast := h.fastAnswer(h.State(), new(scratch), pkt, client, true)
	if fast == nil {
		t.Fatal("the fast path declined")
	}
	compareReplies(t, "dual HTTPS", fast, h.answer(h.State(), new(scratch), q, true, client))
	m := new(dns.Msg)
	if err := m.Unpack(fast); err != nil {
		t.Fatal(err)
	}
	want := `dual.example.test.	20	IN	HTTPS	1 . alpn="h2" ipv4hint="198.51.100.200" ipv6hint="2001:db8::200"`
	if len(m.Answer) != 1 || m.Answer[0].String() != want {
		t.Fatalf("answer %v, want %s", m.Answer, want)
	}
	// geo with the CIDR table: /24 (the client's row); failover: /0.
	// The HTTPS answer holds for the narrower.
	if s := replyECS(m).SourceScope; s != 24 {
		t.Errorf("scope /%d, want /24", s)
	}
}

// respondPacket answers q as a UDP packet from testClient, through
// answerPacket (the fast path, then the full one).
func respondPacket(t testing.TB, h *Handler, q *dns.Msg) []byte {
	t.Helper()
	pkt, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	out := h.answerPacket(new(scratch), new(dns.Msg), pkt, netip.MustParseAddr("127.0.0.1"), true)
	return append([]byte(nil), out...)
}

func readQuickstart(t testing.TB) string {
	t.Helper()
	b, err := examples.Quickstart.ReadFile(examples.QuickstartConfig)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(string(b), "\n")
}

// BenchmarkHTTPSDynamic is an HTTPS query at the quickstart's dynamic
// name with a Client Subnet, from packet to packet.
func BenchmarkHTTPSDynamic(b *testing.B) {
	h, _ := gslbHandler(b, nil)
	pkt, err := withECS("app.example.test.", dns.TypeHTTPS, "198.51.100.0/24").Pack()
	if err != nil {
		b.Fatal(err)
	}
	s, req := new(scratch), new(dns.Msg)
	client := netip.MustParseAddr("127.0.0.1")
	b.ReportAllocs()
	for b.Loop() {
		if out := h.answerPacket(s, req, pkt, client, true); len(out) == 0 {
			b.Fatal("no answer")
		}
	}
}
