package dnsfront

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/examples"
	"github.com/meridian-gslb/meridian/geo"
	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/miekg/dns"
)

// gslbHandler serves the embedded quickstart with its dynamic record and
// CIDR table, health taken from h.
func gslbHandler(t testing.TB, health gslb.HealthView) (*Handler, *gslb.Engine) {
	t.Helper()
	cfg, err := config.LoadFS(examples.Quickstart, examples.QuickstartConfig)
	if err != nil {
		t.Fatal(err)
	}
	return handlerFor(t, cfg, health)
}

// handlerFor builds what serve builds from cfg: zones, the engine over
// health (unknown targets up), the CIDR table and the handler, ECS on.
func handlerFor(t testing.TB, cfg *config.Config, health gslb.HealthView) (*Handler, *gslb.Engine) {
	t.Helper()
	set, err := cfg.LoadZones()
	if err != nil {
		t.Fatal(err)
	}
	g, err := cfg.BuildGSLB()
	if err != nil {
		t.Fatal(err)
	}
	e, err := gslb.New(g.Records, health, gslb.Options{UnknownIsUp: true})
	if err != nil {
		t.Fatal(err)
	}
	table, err := geo.NewTable(cfg.GeoRows())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := geo.NewIndex(geo.Named{Name: "geo.network", Locator: table})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetGeo(idx); err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(&State{Zones: set, Signers: cfg.Signers(), UDPSize: 1232, GSLB: e, ECS: true, ECSMaxPrefix4: 24, ECSMaxPrefix6: 56}, discard())
	if err != nil {
		t.Fatal(err)
	}
	return h, e
}

func withECS(name string, qtype uint16, subnet string) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(1232, false)
	if subnet != "" {
		p := netip.MustParsePrefix(subnet)
		family := uint16(1)
		if p.Addr().Is6() {
			family = 2
		}
		q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_SUBNET{
			Code: dns.EDNS0SUBNET, Family: family, SourceNetmask: uint8(p.Bits()), Address: net.IP(p.Addr().AsSlice()),
		})
	}
	return q
}

func replyECS(m *dns.Msg) *dns.EDNS0_SUBNET {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if s, ok := opt.(*dns.EDNS0_SUBNET); ok {
				return s
			}
		}
	}
	return nil
}

func TestDynamicAnswers(t *testing.T) {
	health := gslb.NewHealthMap()
	for _, id := range []string{"us-east/192.0.2.100", "us-east/192.0.2.101", "eu-west/198.51.100.100", "ap-northeast/203.0.113.100"} {
		health.Set(id, gslb.Up)
	}
	h, e := gslbHandler(t, health)
	e.Refresh()
	tests := []struct {
		name   string
		q      *dns.Msg
		src    string
		rcode  int
		answer []string
		scope  int // -1: no ECS option in the reply
		ttl    uint32
	}{
		{"ECS in eu-west", withECS("app.example.test.", dns.TypeA, "198.51.100.0/24"), "127.0.0.1", dns.RcodeSuccess, []string{"198.51.100.100"}, 24, 30},
		{"ECS in ap-northeast, longer prefix capped at /24", withECS("app.example.test.", dns.TypeA, "203.0.113.128/25"), "127.0.0.1", dns.RcodeSuccess, []string{"203.0.113.100"}, 24, 30},
		// us-east is also every unlocated client's first region: the answer
		// holds for 192.0.0.0/6, the widest prefix holding no other row.
		{"ECS in us-east", withECS("App.Example.Test.", dns.TypeA, "192.0.2.0/24"), "127.0.0.1", dns.RcodeSuccess, []string{"192.0.2.100", "192.0.2.101"}, 6, 30},
		{"no ECS: the resolver's address decides", withECS("app.example.test.", dns.TypeA, ""), "198.51.100.53", dns.RcodeSuccess, []string{"198.51.100.100"}, -1, 30},
		{"ECS /0: no tailoring, scope 0", withECS("app.example.test.", dns.TypeA, "0.0.0.0/0"), "198.51.100.53", dns.RcodeSuccess, []string{"192.0.2.100", "192.0.2.101"}, 0, 30},
		{"other type at a dynamic name: NODATA", withECS("app.example.test.", dns.TypeAAAA, "198.51.100.0/24"), "127.0.0.1", dns.RcodeSuccess, nil, 0, 0},
		{"static name with ECS: echoed with scope 0", withECS("www.example.test.", dns.TypeA, "198.51.100.0/24"), "127.0.0.1", dns.RcodeSuccess, []string{"192.0.2.10", "192.0.2.11"}, 0, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := new(dns.Msg)
			if err := m.Unpack(h.answer(h.State(), new(scratch), tt.q, true, netip.MustParseAddr(tt.src))); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, rr := range m.Answer {
				switch v := rr.(type) {
				case *dns.A:
					got = append(got, v.A.String())
					if v.Hdr.Ttl != tt.ttl || v.Hdr.Name != tt.q.Question[0].Name {
						t.Errorf("record %v: want TTL %d and the query's spelling", v, tt.ttl)
					}
				}
			}
			if m.Rcode != tt.rcode || !m.Authoritative || len(got) != len(tt.answer) {
				t.Fatalf("rcode %s aa %v answer %v, want %s %v", dns.RcodeToString[m.Rcode], m.Authoritative, got, dns.RcodeToString[tt.rcode], tt.answer)
			}
			for i := range got {
				if got[i] != tt.answer[i] {
					t.Fatalf("answer %v, want %v", got, tt.answer)
				}
			}
			if tt.answer == nil && (len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA) {
				t.Errorf("NODATA without the SOA: %v", m.Ns)
			}
			ecs := replyECS(m)
			switch {
			case tt.scope < 0 && ecs != nil:
				t.Errorf("ECS in the reply to a query without: %v", ecs)
			case tt.scope >= 0 && ecs == nil:
				t.Errorf("no ECS in the reply")
			case ecs != nil:
				want := replyECS(tt.q)
				if int(ecs.SourceScope) != tt.scope || ecs.SourceNetmask != want.SourceNetmask || ecs.Family != want.Family || !ecs.Address.Equal(want.Address) {
					t.Errorf("ECS %v, want the query's with scope %d", ecs, tt.scope)
				}
			}
		})
	}
}

func TestDynamicHealth(t *testing.T) {
	health := gslb.NewHealthMap()
	h, e := gslbHandler(t, health)
	ask := func() []string {
		m := new(dns.Msg)
		if err := m.Unpack(h.answer(h.State(), new(scratch), withECS("app.example.test.", dns.TypeA, "198.51.100.0/24"), true, testClient)); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, rr := range m.Answer {
			out = append(out, rr.(*dns.A).A.String()+"/"+string(rune('0'+rr.Header().Ttl/10)))
		}
		return out
	}
	// eu-west's only target down: eu-west's clients go to the next region
	// in the default list, us-east, with the fallback TTL.
	health.Set("eu-west/198.51.100.100", gslb.Down)
	e.Refresh()
	if got := ask(); len(got) != 2 || got[0] != "192.0.2.100/1" {
		t.Fatalf("eu-west down: %v, want us-east's two targets with TTL 10", got)
	}
	// Everything down: fail open, from the client's own region.
	for _, id := range []string{"us-east/192.0.2.100", "us-east/192.0.2.101", "ap-northeast/203.0.113.100"} {
		health.Set(id, gslb.Down)
	}
	e.Refresh()
	if got := ask(); len(got) != 1 || got[0] != "198.51.100.100/1" {
		t.Fatalf("all down: %v, want eu-west's target, failing open with TTL 10", got)
	}
	// eu-west back: its own answer, full TTL.
	health.Set("eu-west/198.51.100.100", gslb.Up)
	e.Refresh()
	if got := ask(); len(got) != 1 || got[0] != "198.51.100.100/3" {
		t.Fatalf("eu-west up: %v", got)
	}
	// Drained, it is skipped whatever its health.
	if err := e.DrainRegion("eu-west", true); err != nil {
		t.Fatal(err)
	}
	if got := ask(); len(got) != 2 || got[0] != "192.0.2.100/1" {
		t.Fatalf("eu-west drained: %v", got)
	}
}

func TestECSValidation(t *testing.T) {
	h, _ := gslbHandler(t, gslb.NewHealthMap())
	tests := []struct {
		name string
		opt  *dns.EDNS0_SUBNET
	}{
		{"unknown family", &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 3, SourceNetmask: 24, Address: net.IP{192, 0, 2, 0}}},
		{"bits past the source prefix", &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 16, Address: net.IP{192, 0, 2, 0}}},
		{"IPv6 bits past the prefix", &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 2, SourceNetmask: 32, Address: net.ParseIP("2001:db8:1::")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := withECS("app.example.test.", dns.TypeA, "")
			q.IsEdns0().Option = append(q.IsEdns0().Option, tt.opt)
			m := new(dns.Msg)
			if err := m.Unpack(h.answer(h.State(), new(scratch), q, true, testClient)); err != nil {
				t.Fatal(err)
			}
			if m.Rcode != dns.RcodeFormatError {
				t.Fatalf("rcode %s, want FORMERR", dns.RcodeToString[m.Rcode])
			}
		})
	}
}

// TestDynamicNameExists: the parent of a dynamic name is an empty
// non-terminal (NODATA, not NXDOMAIN), and a wildcard above a dynamic name
// does not answer for it, on both paths.
func TestDynamicNameExists(t *testing.T) {
	cfg, err := config.Parse("ent.toml", []byte(`
[[zone]]
name = "example.test"
records = ["@ SOA ns1 h 1 2 3 4 60", "@ NS ns1", "ns1 A 192.0.2.53", "*.edge A 192.0.2.99"]
[[region]]
name = "r"
lat = 1
lon = 1
[[record]]
name = "app.edge.example.test"
policy = "failover"
[[record.pool]]
region = "r"
check = { type = "none" }
[[record.pool.target]]
address = "192.0.2.100"
[[record]]
name = "api.svc.example.test"
policy = "failover"
[[record.pool]]
region = "r"
check = { type = "none" }
[[record.pool.target]]
address = "192.0.2.101"
`))
	if err != nil {
		t.Fatal(err)
	}
	set, err := cfg.LoadZones()
	if err != nil {
		t.Fatal(err)
	}
	g, err := cfg.BuildGSLB()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.CheckDynamicNames(set, g); err != nil {
		t.Fatal(err)
	}
	e, err := gslb.New(g.Records, gslb.NewHealthMap(), gslb.Options{UnknownIsUp: true})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(&State{Zones: set, GSLB: e}, discard())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		qtype  uint16
		rcode  int
		answer string
	}{
		{"svc.example.test.", dns.TypeA, dns.RcodeSuccess, ""},                 // ENT above a dynamic name
		{"x.app.edge.example.test.", dns.TypeA, dns.RcodeNameError, ""},        // below it: no wildcard from *.edge
		{"app.edge.example.test.", dns.TypeA, dns.RcodeSuccess, "192.0.2.100"}, // the record, not the wildcard
		{"app.edge.example.test.", dns.TypeTXT, dns.RcodeSuccess, ""},          // NODATA, not the wildcard's
		{"other.edge.example.test.", dns.TypeA, dns.RcodeSuccess, "192.0.2.99"},
	} {
		q := new(dns.Msg)
		q.SetQuestion(tt.name, tt.qtype)
		pkt, _ := q.Pack()
		for _, path := range []string{"fast", "full"} {
			var out []byte
			if path == "fast" {
				if out = h.fastAnswer(h.State(), new(scratch), pkt, testClient, true); out == nil {
					continue // the full path's alone
				}
			} else {
				out = h.answer(h.State(), new(scratch), q, true, testClient)
			}
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatal(err)
			}
			got := ""
			if len(m.Answer) == 1 {
				got = m.Answer[0].(*dns.A).A.String()
			}
			if m.Rcode != tt.rcode || got != tt.answer || len(m.Answer) > 1 {
				t.Errorf("%s %s (%s path): rcode %s answer %v, want %s %q", tt.name, dns.TypeToString[tt.qtype], path,
					dns.RcodeToString[m.Rcode], m.Answer, dns.RcodeToString[tt.rcode], tt.answer)
			}
		}
	}
}

// TestQueryLoggedOnce: with every dynamic answer sampled, a query is
// logged once, whether the fast path answers it or hands it to the full
// path (here NODATA, everything drained), which decides and logs again.
func TestQueryLoggedOnce(t *testing.T) {
	h, e := gslbHandler(t, gslb.NewHealthMap())
	var logs strings.Builder
	h.log = slog.New(slog.NewTextHandler(&logs, nil))
	st := *h.State()
	st.QuerySample = 1
	h.state.Store(&st)

	ask := func(what string, fast bool, answers int) {
		t.Helper()
		q := withECS("app.example.test.", dns.TypeA, "198.51.100.0/24")
		pkt, _ := q.Pack()
		if got := h.fastAnswer(h.State(), new(scratch), pkt, testClient, true) != nil; got != fast {
			t.Fatalf("%s: answered by the fast path %v, want %v", what, got, fast)
		}
		logs.Reset()
		m := exchange(t, h, q, udpClient)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != answers {
			t.Fatalf("%s: rcode %s, %d answers; want NOERROR, %d", what, dns.RcodeToString[m.Rcode], len(m.Answer), answers)
		}
		if n := strings.Count(logs.String(), "msg=query"); n != 1 {
			t.Errorf("%s: logged %d times, want once:\n%s", what, n, logs.String())
		}
	}
	ask("answered by the fast path", true, 1)
	for name := range e.Regions() {
		if err := e.DrainRegion(name, true); err != nil {
			t.Fatal(err)
		}
	}
	ask("NODATA, from the full path", false, 0)
}
