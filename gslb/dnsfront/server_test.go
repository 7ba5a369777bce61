package dnsfront

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startServer serves the quickstart on free loopback ports and stops it when
// the test ends.
func startServer(t *testing.T, cfg Listen) (*Server, *Handler) {
	t.Helper()
	h := quickstartHandler(t)
	if cfg.Addrs == nil {
		cfg.Addrs = []string{"127.0.0.1:0"}
	}
	if cfg.TCPIdleTimeout == 0 {
		cfg.TCPIdleTimeout = 5 * time.Second
	}
	if cfg.TCPMaxConnections == 0 {
		cfg.TCPMaxConnections = 16
	}
	if cfg.TCPMaxQueries == 0 {
		cfg.TCPMaxQueries = 100
	}
	srv := NewServer(cfg, h, discard())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv, h
}

func ask(t *testing.T, network, addr, name string, qtype uint16, edns int) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	if edns > 0 {
		q.SetEdns0(uint16(edns), false)
	}
	m, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("%s query %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	return m
}

func TestServeUDPAndTCP(t *testing.T) {
	srv, _ := startServer(t, Listen{Addrs: []string{"127.0.0.1:0", "[::1]:0"}, UDPSockets: 2})
	for i := range srv.UDPAddrs() {
		for _, tr := range []struct {
			network, addr string
		}{
			{"udp", srv.UDPAddrs()[i].String()},
			{"tcp", srv.TCPAddrs()[i].String()},
		} {
			t.Run(tr.network+" "+tr.addr, func(t *testing.T) {
				m := ask(t, tr.network, tr.addr, "wWw.Example.Test.", dns.TypeA, 0)
				if m.Rcode != dns.RcodeSuccess || !m.Authoritative || len(m.Answer) != 2 {
					t.Fatalf("rcode %s aa %v answers %d:\n%v", dns.RcodeToString[m.Rcode], m.Authoritative, len(m.Answer), m)
				}
				if got := m.Answer[0].Header().Name; got != "wWw.Example.Test." {
					t.Errorf("owner %q, want the query's case", got)
				}
				m = ask(t, tr.network, tr.addr, "nope.example.test.", dns.TypeA, 1232)
				if m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 || m.IsEdns0() == nil {
					t.Errorf("NXDOMAIN with SOA and OPT expected, got\n%v", m)
				}
			})
		}
	}
}

// TestTruncatedThenTCP is what a resolver does: UDP says TC, TCP gets all.
func TestTruncatedThenTCP(t *testing.T) {
	srv, _ := startServer(t, Listen{})
	m := ask(t, "udp", srv.UDPAddrs()[0].String(), "big.example.test.", dns.TypeTXT, 1232)
	if !m.Truncated || len(m.Answer) != 0 {
		t.Fatalf("udp: tc=%v answers=%d, want tc and no partial RRset", m.Truncated, len(m.Answer))
	}
	m = ask(t, "tcp", srv.TCPAddrs()[0].String(), "big.example.test.", dns.TypeTXT, 1232)
	if m.Truncated || len(m.Answer) != 24 {
		t.Fatalf("tcp: tc=%v answers=%d, want all 24", m.Truncated, len(m.Answer))
	}
}

// rawUDP sends b and returns the reply, or nil when none comes within wait.
func rawUDP(t *testing.T, addr string, b []byte, wait time.Duration) *dns.Msg {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.ECONNREFUSED) {
		return nil // silence, or the port is closed: either way no answer
	}
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	return m
}

// TestMalformedPackets sends packets the handler never sees whole: the
// server's first look at the header must answer FORMERR or NOTIMP, or
// nothing, and keep serving.
func TestMalformedPackets(t *testing.T) {
	srv, _ := startServer(t, Listen{})
	addr := srv.UDPAddrs()[0].String()
	good, _ := (&dns.Msg{Question: []dns.Question{{Name: "www.example.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET}}}).Pack()
	header := func(bits uint16, qd, an, ns, ar uint16) []byte {
		b := make([]byte, 12)
		binary.BigEndian.PutUint16(b[0:], 0x1234)
		binary.BigEndian.PutUint16(b[2:], bits)
		binary.BigEndian.PutUint16(b[4:], qd)
		binary.BigEndian.PutUint16(b[6:], an)
		binary.BigEndian.PutUint16(b[8:], ns)
		binary.BigEndian.PutUint16(b[10:], ar)
		return b
	}
	tests := []struct {
		name  string
		pkt   []byte
		rcode int // -1: no reply
	}{
		{"no question", header(0, 0, 0, 0, 0), dns.RcodeFormatError},
		{"question count 2, one sent", append(header(0, 2, 0, 0, 0), good[12:]...), dns.RcodeFormatError},
		{"question count says 1, none sent", header(0, 1, 0, 0, 0), dns.RcodeFormatError},
		{"opcode STATUS", append(header(uint16(dns.OpcodeStatus)<<11, 1, 0, 0, 0), good[12:]...), dns.RcodeNotImplemented},
		{"opcode 15", append(header(15<<11, 1, 0, 0, 0), good[12:]...), dns.RcodeNotImplemented},
		{"truncated name", append(header(0, 1, 0, 0, 0), 3, 'w', 'w'), dns.RcodeFormatError},
		{"a response", append(header(1<<15, 1, 0, 0, 0), good[12:]...), -1},
		{"short header", []byte{0x12, 0x34, 0}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := rawUDP(t, addr, tt.pkt, 300*time.Millisecond)
			if tt.rcode < 0 {
				if m != nil {
					t.Fatalf("want no reply, got %v", m)
				}
				return
			}
			if m == nil {
				t.Fatal("no reply")
			}
			if m.Rcode != tt.rcode || m.Id != 0x1234 {
				t.Fatalf("rcode %s id %#x, want %s id 0x1234", dns.RcodeToString[m.Rcode], m.Id, dns.RcodeToString[tt.rcode])
			}
		})
	}
	if m := ask(t, "udp", addr, "www.example.test.", dns.TypeA, 0); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("server unwell after malformed input: %v", m)
	}
}

// TestTCPPipelining sends three queries before reading any answer.
func TestTCPPipelining(t *testing.T) {
	srv, _ := startServer(t, Listen{})
	conn, err := dns.Dial("tcp", srv.TCPAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	names := []string{"www.example.test.", "mail.example.test.", "nope.example.test."}
	for i, n := range names {
		q := new(dns.Msg)
		q.SetQuestion(n, dns.TypeA)
		q.Id = uint16(100 + i)
		if err := conn.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range names {
		m, err := conn.ReadMsg()
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if m.Id != uint16(100+i) || m.Question[0].Name != n {
			t.Fatalf("answer %d is for id %d %s", i, m.Id, m.Question[0].Name)
		}
	}
}

// TestTCPLimits: connections over the cap are closed at once, and an idle
// connection is closed after the idle timeout.
func TestTCPLimits(t *testing.T) {
	srv, _ := startServer(t, Listen{TCPMaxConnections: 2, TCPIdleTimeout: 300 * time.Millisecond})
	addr := srv.TCPAddrs()[0].String()

	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := dns.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A query makes sure the server has accepted this connection.
		q := new(dns.Msg)
		q.SetQuestion("www.example.test.", dns.TypeA)
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if err := c.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadMsg(); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	over.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := over.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("third connection: read err %v, want it closed by the server", err)
	}

	// The held connections go idle and are closed by the server.
	held[0].SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := held[0].Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("idle connection: read err %v, want closed by the server", err)
	}
	// With the idle ones gone, a new connection is served again.
	deadline := time.Now().Add(3 * time.Second)
	for {
		c := &dns.Client{Net: "tcp", Timeout: time.Second}
		q := new(dns.Msg)
		q.SetQuestion("www.example.test.", dns.TypeA)
		if _, _, err := c.Exchange(q, addr); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no TCP service after idle connections closed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// TestStoreSwapsData: queries after Store see the new state.
func TestStoreSwapsData(t *testing.T) {
	srv, h := startServer(t, Listen{})
	addr := srv.UDPAddrs()[0].String()
	st := *h.State()
	st.Identity = "renamed"
	if err := h.Store(&st); err != nil {
		t.Fatal(err)
	}
	c := &dns.Client{Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion("id.server.", dns.TypeTXT)
	q.Question[0].Qclass = dns.ClassCHAOS
	m, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Answer) != 1 || m.Answer[0].(*dns.TXT).Txt[0] != "renamed" {
		t.Fatalf("got %v", m.Answer)
	}
}

// TestShutdownStopsServing: after Shutdown the port answers no more.
func TestShutdownStopsServing(t *testing.T) {
	h := quickstartHandler(t)
	srv := NewServer(Listen{Addrs: []string{"127.0.0.1:0"}, TCPIdleTimeout: time.Second, TCPMaxConnections: 4, TCPMaxQueries: 10}, h, discard())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	addr := srv.UDPAddrs()[0].String()
	ask(t, "udp", addr, "www.example.test.", dns.TypeA, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	good, _ := (&dns.Msg{Question: []dns.Question{{Name: "www.example.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET}}}).Pack()
	if m := rawUDP(t, addr, good, 300*time.Millisecond); m != nil {
		t.Fatalf("answered after shutdown: %v", m)
	}
}

// TestUDPSessionReplies runs the loop used for wildcard addresses, which
// replies from the query's destination address, on a loopback socket.
func TestUDPSessionReplies(t *testing.T) {
	h := quickstartHandler(t)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u, err := newUDPServer(conn, h, true)
	if err != nil {
		t.Fatal(err)
	}
	go u.serve()
	defer u.shutdown(time.Now().Add(2 * time.Second))
	m := ask(t, "udp", conn.LocalAddr().String(), "www.example.test.", dns.TypeA, 1232)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 2 {
		t.Fatalf("got %v", m)
	}
}

// TestErrorRepliesCarryOPT: NOTIMP and FORMERR answers to a query with a
// good OPT record carry one too (RFC 6891 6.1.1), over both transports.
func TestErrorRepliesCarryOPT(t *testing.T) {
	srv, _ := startServer(t, Listen{})
	tests := []struct {
		name   string
		mutate func(*dns.Msg)
		rcode  int
	}{
		{"NOTIFY", func(q *dns.Msg) { q.Opcode = dns.OpcodeNotify }, dns.RcodeNotImplemented},
		{"UPDATE", func(q *dns.Msg) { q.Opcode = dns.OpcodeUpdate }, dns.RcodeNotImplemented},
		{"no question", func(q *dns.Msg) { q.Question = nil }, dns.RcodeFormatError},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tt.name+" "+network, func(t *testing.T) {
				addr := srv.UDPAddrs()[0].String()
				if network == "tcp" {
					addr = srv.TCPAddrs()[0].String()
				}
				q := new(dns.Msg)
				q.SetQuestion("example.test.", dns.TypeSOA)
				q.AuthenticatedData = true
				q.SetEdns0(1232, false)
				tt.mutate(q)
				m, _, err := (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(q, addr)
				if err != nil {
					t.Fatal(err)
				}
				if m.Rcode != tt.rcode || m.IsEdns0() == nil || m.AuthenticatedData {
					t.Fatalf("rcode %s opt %v ad %v; want %s with OPT, AD clear",
						dns.RcodeToString[m.Rcode], m.IsEdns0() != nil, m.AuthenticatedData, dns.RcodeToString[tt.rcode])
				}
			})
		}
	}
}
