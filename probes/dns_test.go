package probes

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsQuery is what the test server saw of one query.
type dnsQuery struct {
	network string // udp or tcp
	from    netip.Addr
	rd      bool
	udpSize uint16 // advertised in EDNS0; 0 without
}

// dnsServer answers the test names on one 127.0.0.1 port over UDP and TCP
// and records every query it is sent.
type dnsServer struct {
	addr string
	mu   sync.Mutex
	seen []dnsQuery
}

func newDNSServer(t *testing.T) *dnsServer {
	t.Helper()
	s := &dnsServer{}
	pc, ln := listenUDPAndTCP(t)
	s.addr = ln.Addr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc}, {Listener: ln}} {
		started := make(chan struct{})
		srv.Handler, srv.NotifyStartedFunc = dns.HandlerFunc(s.serve), func() { close(started) }
		done := make(chan error, 1)
		go func() { done <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-done:
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Shutdown(); <-done })
	}
	return s
}

// listenUDPAndTCP opens UDP and TCP sockets on one free 127.0.0.1 port, as
// a nameserver has.
func listenUDPAndTCP(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	var err error
	for range 10 { // the TCP port's UDP twin may be taken
		var ln net.Listener
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			break
		}
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", ln.Addr().String()); err == nil {
			return pc, ln
		}
		ln.Close()
	}
	t.Fatal(err)
	return nil, nil
}

func (s *dnsServer) serve(w dns.ResponseWriter, q *dns.Msg) {
	network := "tcp"
	if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
		network = "udp"
	}
	from, _ := netip.ParseAddrPort(w.RemoteAddr().String())
	seen := dnsQuery{network: network, from: from.Addr(), rd: q.RecursionDesired}
	if opt := q.IsEdns0(); opt != nil {
		seen.udpSize = opt.UDPSize()
	}
	s.mu.Lock()
	s.seen = append(s.seen, seen) // before the reply, so the checker's return orders it
	s.mu.Unlock()

	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative = true
	qn, qt := strings.ToLower(q.Question[0].Name), q.Question[0].Qtype
	rr := func(s string) dns.RR { return mustRR(s) }
	switch {
	case qn == "ok.test." && qt == dns.TypeA:
		r.Answer = []dns.RR{rr("ok.test. 60 IN A 192.0.2.1")}
	case qn == "ok.test." && qt == dns.TypeMX:
		r.Answer = []dns.RR{rr("ok.test. 60 IN MX 10 Mail.Example.TEST.")}
	case qn == "ok.test.": // NODATA
	case qn == "cname.test.":
		r.Answer = []dns.RR{rr("cname.test. 60 IN CNAME ok.test."), rr("ok.test. 60 IN A 192.0.2.1")}
	case qn == "many.test.":
		for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"} {
			r.Answer = append(r.Answer, rr("many.test. 60 IN A "+a))
		}
	case qn == "nxdomain.test.":
		r.Rcode = dns.RcodeNameError
	case qn == "servfail.test.":
		r.Rcode = dns.RcodeServerFailure
	case qn == "big.test." && network == "udp":
		r.Truncated = true // the answer would not fit, says the server
	case qn == "big.test.":
		r.Answer = []dns.RR{rr("big.test. 60 IN A 192.0.2.7")}
	case qn == "wrong-question.test.":
		r.Question[0].Name = "other.test."
		r.Answer = []dns.RR{rr("other.test. 60 IN A 192.0.2.1")}
	default:
		r.Rcode = dns.RcodeRefused
	}
	w.WriteMsg(r)
}

// queries returns and forgets the queries seen so far.
func (s *dnsServer) queries() []dnsQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.seen
	s.seen = nil
	return q
}

func mustRR(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}

func mustDNS(t *testing.T, cfg DNSConfig) *DNSChecker {
	t.Helper()
	c, err := NewDNSChecker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// silentUDP is a nameserver address that takes queries and never answers.
func silentUDP(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// silentTCP accepts connections (the kernel does, from its backlog) and
// never answers on them.
func silentTCP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// closedUDPPort returns a loopback address no UDP socket is bound to.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// canBind reports whether the host has addr: 127.0.0.0/8 is all local on
// Linux, only 127.0.0.1 elsewhere.
func canBind(addr netip.Addr) bool {
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

func TestDNSChecker(t *testing.T) {
	srv := newDNSServer(t)
	second := netip.MustParseAddr("127.0.0.2")

	tests := []struct {
		name       string
		cfg        DNSConfig // Addr defaults to the test server
		timeout    time.Duration
		wantOK     bool
		wantReason string
		wantNet    []string // the transports the server saw, in order
	}{
		{"answer", DNSConfig{Name: "ok.test"}, 0, true, "rcode NOERROR", []string{"udp"}},
		{"name in mixed case", DNSConfig{Name: "OK.Test."}, 0, true, "rcode NOERROR", []string{"udp"}},
		{"NODATA passes without an answer to match", DNSConfig{Name: "ok.test", Type: dns.TypeAAAA}, 0, true, "rcode NOERROR", []string{"udp"}},
		{"NXDOMAIN", DNSConfig{Name: "nxdomain.test"}, 0, false, "rcode NXDOMAIN, want NOERROR", []string{"udp"}},
		{"NXDOMAIN wanted", DNSConfig{Name: "nxdomain.test", Rcode: dns.RcodeNameError}, 0, true, "rcode NXDOMAIN", []string{"udp"}},
		{"NOERROR when NXDOMAIN wanted", DNSConfig{Name: "ok.test", Rcode: dns.RcodeNameError}, 0, false, "rcode NOERROR, want NXDOMAIN", []string{"udp"}},
		{"SERVFAIL", DNSConfig{Name: "servfail.test"}, 0, false, "rcode SERVFAIL, want NOERROR", []string{"udp"}},
		{"REFUSED", DNSConfig{Name: "elsewhere.test"}, 0, false, "rcode REFUSED, want NOERROR", []string{"udp"}},
		{"answer matches", DNSConfig{Name: "ok.test", Answer: "192.0.2.1"}, 0, true, "rcode NOERROR", []string{"udp"}},
		{"answer differs", DNSConfig{Name: "ok.test", Answer: "192.0.2.9"}, 0, false, "no answer 192.0.2.9 (got 192.0.2.1)", []string{"udp"}},
		{"answer among many", DNSConfig{Name: "many.test", Answer: "192.0.2.4"}, 0, true, "rcode NOERROR", []string{"udp"}},
		{"answer not among many", DNSConfig{Name: "many.test", Answer: "192.0.2.9"}, 0, false, "no answer 192.0.2.9 (got 192.0.2.1, 192.0.2.2, 192.0.2.3 and 2 more)", []string{"udp"}},
		{"answer after a CNAME", DNSConfig{Name: "cname.test", Answer: "192.0.2.1"}, 0, true, "rcode NOERROR", []string{"udp"}},
		{"answer wanted, NODATA", DNSConfig{Name: "ok.test", Type: dns.TypeAAAA, Answer: "2001:db8::1"}, 0, false, "no answer 2001:db8::1 (got none)", []string{"udp"}},
		{"MX answer, names without regard to case", DNSConfig{Name: "ok.test", Type: dns.TypeMX, Answer: "10 mail.example.test"}, 0, true, "rcode NOERROR", []string{"udp"}},
		{"MX preference differs", DNSConfig{Name: "ok.test", Type: dns.TypeMX, Answer: "20 mail.example.test."}, 0, false, "no answer 20 mail.example.test. (got 10 Mail.Example.TEST.)", []string{"udp"}},
		{"truncated over UDP, answered over TCP", DNSConfig{Name: "big.test", Answer: "192.0.2.7"}, 0, true, "rcode NOERROR", []string{"udp", "tcp"}},
		{"TCP only", DNSConfig{Name: "ok.test", TCP: true}, 0, true, "rcode NOERROR", []string{"tcp"}},
		{"from a source address", DNSConfig{Name: "ok.test", Source: second}, 0, true, "rcode NOERROR", []string{"udp"}},
		{"from a source address, TCP retry", DNSConfig{Name: "big.test", Source: second}, 0, true, "rcode NOERROR", []string{"udp", "tcp"}},
		{"reply to another question", DNSConfig{Name: "wrong-question.test"}, 0, false, "reply to another question", []string{"udp"}},
		{"no server", DNSConfig{Addr: closedUDPPort(t), Name: "ok.test"}, 0, false, "read: connection refused", nil},
		{"no server over TCP", DNSConfig{Addr: closedPort(t), Name: "ok.test", TCP: true}, 0, false, "tcp: connect: connection refused", nil},
		{"no reply", DNSConfig{Addr: silentUDP(t).LocalAddr().String(), Name: "ok.test"}, 100 * time.Millisecond, false, "timeout", nil},
		{"no reply over TCP", DNSConfig{Addr: silentTCP(t), Name: "ok.test", TCP: true}, 100 * time.Millisecond, false, "tcp: timeout", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Source.IsValid() && !canBind(tt.cfg.Source) {
				t.Skipf("this host has no %s", tt.cfg.Source)
			}
			if tt.cfg.Addr == "" {
				tt.cfg.Addr = srv.addr
			}
			timeout := cmpOr(tt.timeout, 2*time.Second)
			start := time.Now()
			r := check(mustDNS(t, tt.cfg), timeout)
			if took := time.Since(start); took > timeout+time.Second {
				t.Errorf("the check took %v with a %v deadline", took, timeout)
			}
			if r.OK != tt.wantOK || r.Reason != tt.wantReason {
				t.Fatalf("got OK=%v reason %q, want OK=%v reason %q", r.OK, r.Reason, tt.wantOK, tt.wantReason)
			}
			if r.RTT <= 0 {
				t.Errorf("RTT %v, want > 0", r.RTT)
			}
			seen := srv.queries()
			var nets []string
			for _, q := range seen {
				nets = append(nets, q.network)
				if q.rd || q.udpSize != DNSUDPSize {
					t.Errorf("%s query with RD=%v and EDNS0 size %d, want RD=false and %d", q.network, q.rd, q.udpSize, DNSUDPSize)
				}
				if want := cmpOr(tt.cfg.Source, netip.MustParseAddr("127.0.0.1")); q.from != want {
					t.Errorf("%s query from %v, want %v", q.network, q.from, want)
				}
			}
			if !slices.Equal(nets, tt.wantNet) {
				t.Errorf("the server saw queries over %v, want %v", nets, tt.wantNet)
			}
		})
	}
}

// cmpOr is cmp.Or for comparable values that are not cmp.Ordered.
func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// A source address the host does not have fails the bind, which shows the
// checker binds the address it is given over UDP as well as TCP.
func TestDNSCheckerBindsSource(t *testing.T) {
	if !canBind(netip.MustParseAddr("127.0.0.1")) || canBind(netip.MustParseAddr("192.0.2.1")) {
		t.Skip("binding a foreign address succeeds here (ip_nonlocal_bind)")
	}
	srv := newDNSServer(t)
	for _, tcp := range []bool{false, true} {
		c := mustDNS(t, DNSConfig{Addr: srv.addr, Name: "ok.test", Source: netip.MustParseAddr("192.0.2.1"), TCP: tcp})
		r := check(c, 2*time.Second)
		if r.OK || !strings.Contains(r.Reason, "bind: ") {
			t.Errorf("TCP=%v: got OK=%v reason %q, want a bind failure", tcp, r.OK, r.Reason)
		}
	}
	if q := srv.queries(); len(q) != 0 {
		t.Errorf("the server saw %d queries", len(q))
	}
}

// A check canceled without a deadline ends at once: the wait for the reply
// is not left to a default read timeout.
func TestDNSCheckerCanceled(t *testing.T) {
	silent := silentUDP(t)
	c := mustDNS(t, DNSConfig{Addr: silent.LocalAddr().String(), Name: "ok.test"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	result := make(chan Result, 1)
	go func() { result <- c.Check(ctx) }()

	// Cancel once the query is out, so the check is waiting for a reply.
	silent.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := silent.ReadFrom(make([]byte, 512)); err != nil {
		t.Fatalf("no query arrived: %v", err)
	}
	cancel()
	select {
	case r := <-result:
		if r.OK || r.Reason != "canceled" {
			t.Errorf("got OK=%v reason %q, want canceled", r.OK, r.Reason)
		}
	case <-time.After(time.Second): // well under the 2s a read timeout would take
		t.Fatal("the check went on after its context was canceled")
	}
}

func TestNewDNSCheckerInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  DNSConfig
	}{
		{"no port", DNSConfig{Addr: "127.0.0.1", Name: "ok.test"}},
		{"no name", DNSConfig{Addr: "127.0.0.1:53"}},
		{"bad name", DNSConfig{Addr: "127.0.0.1:53", Name: "a..test"}},
		{"OPT query", DNSConfig{Addr: "127.0.0.1:53", Name: "ok.test", Type: dns.TypeOPT}},
		{"zone transfer", DNSConfig{Addr: "127.0.0.1:53", Name: "ok.test", Type: dns.TypeAXFR}},
		{"negative rcode", DNSConfig{Addr: "127.0.0.1:53", Name: "ok.test", Rcode: -1}},
		{"rcode beyond 12 bits", DNSConfig{Addr: "127.0.0.1:53", Name: "ok.test", Rcode: 4096}},
		{"answer not an address", DNSConfig{Addr: "127.0.0.1:53", Name: "ok.test", Answer: "mail.example.test."}},
		{"IPv6 answer to an A query", DNSConfig{Addr: "127.0.0.1:53", Name: "ok.test", Answer: "2001:db8::1"}},
		{"MX answer without preference", DNSConfig{Addr: "127.0.0.1:53", Name: "ok.test", Type: dns.TypeMX, Answer: "mail.example.test."}},
		{"answer that is a comment", DNSConfig{Addr: "127.0.0.1:53", Name: "ok.test", Answer: "; 192.0.2.1"}},
		{"answer to ANY", DNSConfig{Addr: "127.0.0.1:53", Name: "ok.test", Type: dns.TypeANY, Answer: "192.0.2.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewDNSChecker(tt.cfg)
			if !errors.Is(err, ErrInvalidCheck) {
				t.Fatalf("got %v, want ErrInvalidCheck", err)
			}
			if !strings.Contains(err.Error(), tt.cfg.Addr) {
				t.Errorf("error %q does not name the address", err)
			}
		})
	}
}

func TestDNSCheckerEqual(t *testing.T) {
	base := DNSConfig{Addr: "127.0.0.1:53", Name: "ok.test.", Type: dns.TypeA, Answer: "192.0.2.1"}
	a := mustDNS(t, base)
	if got, want := a.String(), "dns ok.test. A @127.0.0.1:53"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, same := range []DNSConfig{
		base,
		{Addr: "127.0.0.1:53", Name: "OK.Test", Answer: " 192.0.2.1 "}, // type A by default, spelling aside
	} {
		if !a.Equal(mustDNS(t, same)) {
			t.Errorf("%+v: not equal", same)
		}
	}
	for name, edit := range map[string]func(*DNSConfig){
		"other address": func(c *DNSConfig) { c.Addr = "127.0.0.1:5353" },
		"other source":  func(c *DNSConfig) { c.Source = netip.MustParseAddr("127.0.0.1") },
		"other name":    func(c *DNSConfig) { c.Name = "www.test." },
		"other type":    func(c *DNSConfig) { c.Type, c.Answer = dns.TypeAAAA, "" },
		"other rcode":   func(c *DNSConfig) { c.Rcode = dns.RcodeNameError },
		"other answer":  func(c *DNSConfig) { c.Answer = "192.0.2.2" },
		"no answer":     func(c *DNSConfig) { c.Answer = "" },
		"over TCP":      func(c *DNSConfig) { c.TCP = true },
	} {
		other := base
		edit(&other)
		if a.Equal(mustDNS(t, other)) {
			t.Errorf("%s: equal", name)
		}
	}
	if a.Equal(newTCP(t, TCPConfig{Addr: "127.0.0.1:53"})) {
		t.Error("a TCP check: equal")
	}
}
