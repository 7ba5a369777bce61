package xfr_test

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb/dnsfront"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/xfr"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	keyName   = "ns2-example."
	secret    = "0rTUrMjf1oODdN0OSuA5CzqTmoGMzF5XF/G3mCOfSZE="
	badSecret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

// zoneOf builds origin with serial, its SOA and NS, and the lines.
func zoneOf(t testing.TB, origin string, serial uint32, lines ...string) *zones.Zone {
	t.Helper()
	all := append([]string{
		fmt.Sprintf("@ 3600 IN SOA ns1 hostmaster %d 7200 3600 1209600 300", serial),
		"@ 3600 IN NS ns1",
		"ns1 300 IN A 192.0.2.53",
	}, lines...)
	var rrs []dns.RR
	for _, l := range all {
		rr, err := zones.ParseRecord(origin, l, 300)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	z, err := zones.Build(origin, rrs)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// server serves the zones of loads (each a load of the zones, in order)
// from a real dnsfront listener on loopback, with transfers of
// example.test allowed with the key and of open.test to loopback
// unsigned; other.test is served but not transferred.
func server(t testing.TB, loads ...[]*zones.Zone) (addr string, metrics *xfr.Metrics) {
	t.Helper()
	plans := map[string]xfr.ZonePlan{
		"example.test.": {Serial: xfr.SerialIncrement, Transfer: true},
		"open.test.":    {Transfer: true},
	}
	cfgs := map[string]xfr.Config{
		"example.test.": {Allow: []xfr.Rule{{Key: keyName}}},
		"open.test.":    {Allow: []xfr.Rule{{Prefix: "127.0.0.0/8"}}},
	}
	keys := map[string]xfr.Key{keyName: {Name: keyName, Algorithm: dns.HmacSHA256, Secret: secret}}
	var (
		h   *xfr.History
		set *zones.Set
	)
	for _, zs := range loads {
		s, err := zones.NewSet(zs...)
		if err != nil {
			t.Fatal(err)
		}
		if h, set, _, err = h.Next(s, plans, 4, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.DiscardHandler)
	metrics = xfr.NewMetrics()
	hd, err := dnsfront.NewHandler(&dnsfront.State{Zones: set, Transfers: h.Table(cfgs, keys, metrics, log)}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := dnsfront.NewServer(dnsfront.Listen{Addrs: []string{"127.0.0.1:0"}, TCP: dnsfront.TCPLimits{
		Idle: 5 * time.Second, MessageTimeout: 5 * time.Second, MaxConns: 16, MaxPerClient: 16, MaxPerPrefix: 16, MaxQueries: 100,
	}}, hd, log)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
	return srv.TCPAddrs()[0].String(), metrics
}

func axfr(zone string) *dns.Msg {
	m := new(dns.Msg)
	m.SetAxfr(zone)
	return m
}

func ixfr(zone string, serial uint32) *dns.Msg {
	m := new(dns.Msg)
	m.SetIxfr(zone, serial, "ns1."+zone, "hostmaster."+zone)
	return m
}

// transfer runs a transfer of m with dns.Transfer, signed with the key
// when signed, and returns the records of every envelope.
func transfer(t testing.TB, addr string, m *dns.Msg, signed bool) ([]dns.RR, error) {
	t.Helper()
	tr := &dns.Transfer{}
	if signed {
		tr.TsigSecret = map[string]string{keyName: secret}
		m.SetTsig(keyName, dns.HmacSHA256, 300, time.Now().Unix())
	}
	ch, err := tr.In(m, addr)
	if err != nil {
		return nil, err
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil {
			return rrs, env.Error
		}
		rrs = append(rrs, env.RR...)
	}
	return rrs, nil
}

func TestTransferAXFR(t *testing.T) {
	var lines []string
	for i := range 5000 { // several messages, each signed, chained
		lines = append(lines, fmt.Sprintf("host%04d 300 IN TXT \"a record long enough to fill messages: %d\"", i, i))
	}
	addr, _ := server(t, []*zones.Zone{zoneOf(t, "example.test.", 7, lines...)})
	rrs, err := transfer(t, addr, axfr("example.test."), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rrs) != 5000+4 { // SOA, NS, A, the TXT, SOA
		t.Fatalf("%d records, want %d", len(rrs), 5004)
	}
	first, last := rrs[0].(*dns.SOA), rrs[len(rrs)-1].(*dns.SOA)
	if first.Serial != 7 || last.Serial != 7 {
		t.Errorf("SOA serials %d and %d, want 7", first.Serial, last.Serial)
	}
}

func TestTransferIXFR(t *testing.T) {
	v1 := zoneOf(t, "example.test.", 7, "www 300 IN A 192.0.2.10")
	v2 := zoneOf(t, "example.test.", 7, "www 300 IN A 192.0.2.11")
	v3 := zoneOf(t, "example.test.", 7, "www 300 IN A 192.0.2.11", "mail 300 IN A 192.0.2.25")
	addr, metrics := server(t, []*zones.Zone{v1}, []*zones.Zone{v2}, []*zones.Zone{v3})
	for _, tt := range []struct {
		from uint32
		want []string // records, as "type serial-or-data"
	}{
		{7, []string{"SOA 9", "SOA 7", "A 192.0.2.10", "SOA 8", "A 192.0.2.11", "SOA 8", "SOA 9", "A 192.0.2.25", "SOA 9"}},
		{8, []string{"SOA 9", "SOA 8", "SOA 9", "A 192.0.2.25", "SOA 9"}},
		{9, []string{"SOA 9"}}, // up to date
		{6, []string{"SOA 9", "NS ns1.example.test.", "A 192.0.2.25", "A 192.0.2.53", "A 192.0.2.11", "SOA 9"}}, // beyond the history: AXFR, in canonical order
	} {
		rrs, err := transfer(t, addr, ixfr("example.test.", tt.from), true)
		if err != nil {
			t.Fatalf("IXFR from %d: %v", tt.from, err)
		}
		var got []string
		for _, rr := range rrs {
			switch v := rr.(type) {
			case *dns.SOA:
				got = append(got, fmt.Sprintf("SOA %d", v.Serial))
			default:
				f := strings.Fields(rr.String())
				got = append(got, f[3]+" "+f[4])
			}
		}
		if strings.Join(got, ", ") != strings.Join(tt.want, ", ") {
			t.Errorf("IXFR from %d:\n got %v\nwant %v", tt.from, got, tt.want)
		}
	}
	if got := testutilCount(t, metrics, `meridian_xfr_requests_total{request="ixfr",result="ixfr",zone="example.test."}`); got != 2 {
		t.Errorf("IXFR served counted %v, want 2", got)
	}
}

// TestTransferRefused sends what a transfer must refuse and checks the
// rcode and TSIG error RFC 5936 and RFC 8945 prescribe.
func TestTransferRefused(t *testing.T) {
	addr, metrics := server(t, []*zones.Zone{
		zoneOf(t, "example.test.", 7), zoneOf(t, "open.test.", 3), zoneOf(t, "other.test.", 1)})
	for _, tt := range []struct {
		name    string
		msg     *dns.Msg
		key     string // signed with this key name ("": unsigned)
		secret  string
		skew    time.Duration
		rcode   int
		tsigErr uint16 // the reply's TSIG error; 0 with no TSIG expected
	}{
		{name: "unsigned", msg: axfr("example.test."), rcode: dns.RcodeRefused},
		{name: "unknown key", msg: axfr("example.test."), key: "nobody.", secret: secret, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadKey},
		{name: "bad MAC", msg: axfr("example.test."), key: keyName, secret: badSecret, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadSig},
		{name: "an hour off", msg: axfr("example.test."), key: keyName, secret: secret, skew: -time.Hour, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadTime},
		{name: "not our zone", msg: axfr("nowhere.test."), key: keyName, secret: secret, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeSuccess},
		{name: "a zone not transferred", msg: axfr("other.test."), rcode: dns.RcodeRefused},
		{name: "a zone not transferred, signed", msg: axfr("other.test."), key: keyName, secret: secret, rcode: dns.RcodeRefused, tsigErr: dns.RcodeSuccess},
		{name: "a name in the zone", msg: axfr("www.example.test."), rcode: dns.RcodeNotAuth},
		{name: "IXFR without its SOA", msg: func() *dns.Msg { m := ixfr("open.test.", 1); m.Ns = nil; return m }(), rcode: dns.RcodeFormatError},
		{name: "class CH", msg: func() *dns.Msg { m := axfr("open.test."); m.Question[0].Qclass = dns.ClassCHAOS; return m }(), rcode: dns.RcodeRefused},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
			if tt.key != "" {
				c.TsigSecret = map[string]string{tt.key: tt.secret}
				tt.msg.SetTsig(tt.key, dns.HmacSHA256, 300, time.Now().Add(tt.skew).Unix())
			}
			r, _, err := c.Exchange(tt.msg, addr)
			if r == nil {
				t.Fatalf("no reply: %v", err)
			}
			if r.Rcode != tt.rcode || len(r.Answer) != 0 {
				t.Errorf("rcode %s with %d records, want %s and none", dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tt.rcode])
			}
			ts := r.IsTsig()
			switch {
			case tt.key == "" && ts != nil:
				t.Errorf("an unsigned request got a TSIG: %v", ts)
			case tt.key != "" && ts == nil:
				t.Errorf("no TSIG in the reply")
			case ts != nil && ts.Error != tt.tsigErr:
				t.Errorf("TSIG error %s, want %s", dns.RcodeToString[int(ts.Error)], dns.RcodeToString[int(tt.tsigErr)])
			case ts != nil && tt.tsigErr == dns.RcodeBadTime && ts.OtherLen != 6:
				t.Errorf("BADTIME without our time in Other Data: %v", ts)
			case ts != nil && (tt.tsigErr == dns.RcodeBadSig || tt.tsigErr == dns.RcodeBadKey) && ts.MACSize != 0:
				t.Errorf("%s reply signed: %v", dns.RcodeToString[int(tt.tsigErr)], ts)
			case ts != nil && tt.tsigErr == dns.RcodeSuccess && ts.MACSize == 0:
				t.Errorf("a refusal of a good signature is not signed: %v", ts)
			case ts != nil && tt.rcode != dns.RcodeNotAuth && err != nil:
				// (miekg/dns verifies no NOTAUTH reply at all)
				t.Errorf("a signed refusal does not verify: %v", err)
			}
		})
	}
	for metric, want := range map[string]float64{
		`meridian_tsig_errors_total{error="badsig"}`:                                        1,
		`meridian_tsig_errors_total{error="badtime"}`:                                       1,
		`meridian_xfr_requests_total{request="axfr",result="refused",zone="example.test."}`: 1,
		`meridian_xfr_requests_total{request="axfr",result="notauth",zone=""}`:              2,
		`meridian_xfr_requests_total{request="ixfr",result="formerr",zone="open.test."}`:    1,
		`meridian_xfr_requests_total{request="axfr",result="notauth",zone="example.test."}`: 3,
		`meridian_xfr_requests_total{request="axfr",result="refused",zone="other.test."}`:   2,
	} {
		if got := testutilCount(t, metrics, metric); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
}

// TestTransferUDP: IXFR over UDP gets the SOA alone, signed; AXFR over
// UDP is refused; an unsigned prefix rule serves over TCP.
func TestTransferUDP(t *testing.T) {
	addr, _ := server(t, []*zones.Zone{zoneOf(t, "example.test.", 7), zoneOf(t, "open.test.", 3, "www 300 IN A 192.0.2.1")})
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second, TsigSecret: map[string]string{keyName: secret}}
	m := ixfr("example.test.", 1)
	m.SetTsig(keyName, dns.HmacSHA256, 300, time.Now().Unix())
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatal(err) // the TSIG of the reply verifies, or this fails
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != 7 || r.IsTsig() == nil {
		t.Errorf("IXFR over UDP: %v", r)
	}
	r, _, err = c.Exchange(axfr("open.test."), addr)
	if err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR over UDP: %v %v", err, r)
	}
	rrs, err := transfer(t, addr, axfr("open.test."), false)
	if err != nil || len(rrs) != 5 {
		t.Errorf("unsigned AXFR by prefix: %v, %d records", err, len(rrs))
	}
	// Ordinary queries go on being answered beside transfers.
	c.TsigSecret = nil
	r, _, err = c.Exchange(func() *dns.Msg { m := new(dns.Msg); m.SetQuestion("www.open.test.", dns.TypeA); return m }(), addr)
	if err != nil || len(r.Answer) != 1 {
		t.Errorf("A query: %v %v", err, r)
	}
}

// TestTransferMalformed: bytes that claim to be a transfer request but do
// not parse get FORMERR, over TCP and UDP, and the connection survives.
func TestTransferMalformed(t *testing.T) {
	addr, _ := server(t, []*zones.Zone{zoneOf(t, "example.test.", 7)})
	good, err := axfr("example.test.").Pack()
	if err != nil {
		t.Fatal(err)
	}
	bad := append(append([]byte{}, good...), 0xC0) // junk after the question: an answer count lie
	bad[7] = 1                                     // ANCOUNT 1, with no record
	for _, network := range []string{"udp", "tcp"} {
		conn, err := net.DialTimeout(network, addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		dc := &dns.Conn{Conn: conn}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := dc.Write(bad); err != nil {
			t.Fatal(err)
		}
		r, err := dc.ReadMsg()
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if r.Rcode != dns.RcodeFormatError {
			t.Errorf("%s: rcode %s, want FORMERR", network, dns.RcodeToString[r.Rcode])
		}
	}
}

// testutilCount returns the value of metric, written as
// name{label="value",...} with the labels in order, or 0 when absent.
func testutilCount(t *testing.T, m *xfr.Metrics, metric string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if f.GetName()+"{"+strings.Join(labels, ",")+"}" == metric {
				return s.GetCounter().GetValue()
			}
		}
	}
	return 0
}
