package dnsfront

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
	cfg.TCP = tcpLimits(cfg.TCP)
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

// tcpLimits fills the limits a test leaves out.
func tcpLimits(l TCPLimits) TCPLimits {
	l.Idle = cmp.Or(l.Idle, 5*time.Second)
	l.MessageTimeout = cmp.Or(l.MessageTimeout, 2*time.Second)
	l.MaxConns = cmp.Or(l.MaxConns, 16)
	l.MaxPerClient = cmp.Or(l.MaxPerClient, 16)
	l.MaxPerPrefix = cmp.Or(l.MaxPerPrefix, 64)
	l.MaxQueries = cmp.Or(l.MaxQueries, 100)
	return l
}

// dialTCP opens a connection from local (an address of 127/8, or ""
// for any) and, when ask, makes sure the server took it with a query.
func dialTCP(t *testing.T, addr, local string, ask bool) *dns.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 2 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &dns.Conn{Conn: nc}
	t.Cleanup(func() { c.Close() })
	if ask {
		if _, err := askOn(c); err != nil {
			t.Fatalf("a query on a new connection from %s: %v", local, err)
		}
	}
	return c
}

func askOn(c *dns.Conn) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if err := c.WriteMsg(q); err != nil {
		return nil, err
	}
	return c.ReadMsg()
}

// counted waits for a close of reason to be counted: the server counts
// after closing.
func counted(h *Handler, reason string) bool {
	for range 100 {
		if h.stats.tcpCloses[reason].Load() == 1 {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// closedWithin reports whether the server closes c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || isReset(err)
}

// TestTCPLimits: one client cannot hold TCP for the others. At the total
// cap a newcomer takes the place of the connection idle longest; over a
// client's own cap it is closed; idle and slow connections are closed;
// the idle timeout shrinks as the table fills.
func TestTCPLimits(t *testing.T) {
	t.Run("at the cap, the oldest idle connection makes room", func(t *testing.T) {
		srv, h := startServer(t, Listen{TCP: TCPLimits{MaxConns: 2}})
		addr := srv.TCPAddrs()[0].String()
		old := dialTCP(t, addr, "127.0.0.2", true)
		time.Sleep(20 * time.Millisecond)
		dialTCP(t, addr, "127.0.0.3", true)
		dialTCP(t, addr, "127.0.0.4", true) // served
		if !closedWithin(old, 2*time.Second) {
			t.Error("the oldest idle connection was not closed")
		}
		if !counted(h, "evicted") {
			t.Error("the eviction was not counted")
		}
	})
	t.Run("at the cap with every connection busy, the newcomer is closed", func(t *testing.T) {
		srv, _ := startServer(t, Listen{TCP: TCPLimits{MaxConns: 2}})
		addr := srv.TCPAddrs()[0].String()
		for _, local := range []string{"127.0.0.2", "127.0.0.3"} {
			c := dialTCP(t, addr, local, false)
			c.Conn.Write([]byte{0}) // a message begun, not finished: busy
		}
		time.Sleep(50 * time.Millisecond)
		if c := dialTCP(t, addr, "127.0.0.4", false); !closedWithin(c, time.Second) {
			t.Error("a connection over the cap of busy ones was kept")
		}
	})
	t.Run("a client over its own cap is closed, others are served", func(t *testing.T) {
		srv, _ := startServer(t, Listen{TCP: TCPLimits{MaxPerClient: 2}})
		addr := srv.TCPAddrs()[0].String()
		dialTCP(t, addr, "127.0.0.2", true)
		dialTCP(t, addr, "127.0.0.2", true)
		if c := dialTCP(t, addr, "127.0.0.2", false); !closedWithin(c, time.Second) {
			t.Error("a third connection from one address was kept")
		}
		dialTCP(t, addr, "127.1.0.2", true)
	})
	t.Run("a client prefix over its cap is closed", func(t *testing.T) {
		srv, _ := startServer(t, Listen{TCP: TCPLimits{MaxPerPrefix: 2}})
		addr := srv.TCPAddrs()[0].String()
		dialTCP(t, addr, "127.0.0.2", true)
		dialTCP(t, addr, "127.0.0.3", true)
		if c := dialTCP(t, addr, "127.0.0.4", false); !closedWithin(c, time.Second) {
			t.Error("a third connection from one /24 was kept")
		}
	})
	t.Run("an idle connection is closed after the idle timeout", func(t *testing.T) {
		srv, _ := startServer(t, Listen{TCP: TCPLimits{Idle: 300 * time.Millisecond}})
		c := dialTCP(t, srv.TCPAddrs()[0].String(), "", true)
		start := time.Now()
		if !closedWithin(c, 3*time.Second) || time.Since(start) < 200*time.Millisecond {
			t.Errorf("idle connection closed after %v, want about 300ms", time.Since(start))
		}
	})
	t.Run("a message sent a byte at a time is cut", func(t *testing.T) {
		srv, h := startServer(t, Listen{TCP: TCPLimits{Idle: 10 * time.Second, MessageTimeout: 300 * time.Millisecond}})
		c := dialTCP(t, srv.TCPAddrs()[0].String(), "", false)
		c.Conn.Write([]byte{0}) // the first byte of a length, and no more
		if !closedWithin(c, 3*time.Second) {
			t.Error("a slow message kept its connection")
		}
		if !counted(h, "slow") {
			t.Error("the slow connection's close was not counted")
		}
	})
	t.Run("the idle timeout shrinks as the table fills", func(t *testing.T) {
		srv, _ := startServer(t, Listen{TCP: TCPLimits{MaxConns: 4, Idle: 4 * time.Second}})
		addr := srv.TCPAddrs()[0].String()
		var last *dns.Conn
		for _, local := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
			last = dialTCP(t, addr, local, true)
		}
		start := time.Now()
		if !closedWithin(last, 3*time.Second) {
			t.Fatal("the last connection to a full table kept the full idle timeout")
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("closed after %v; with the table full it has a tenth of 4s", took)
		}
	})
	t.Run("a flood of idle connections stops neither UDP nor new clients", func(t *testing.T) {
		srv, _ := startServer(t, Listen{TCP: TCPLimits{MaxConns: 32, MaxPerClient: 64, MaxPerPrefix: 64}})
		addr := srv.TCPAddrs()[0].String()
		for range 64 {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
		}
		udp := &dns.Client{Timeout: 2 * time.Second}
		q := new(dns.Msg)
		q.SetQuestion("www.example.test.", dns.TypeA)
		if _, _, err := udp.Exchange(q, srv.UDPAddrs()[0].String()); err != nil {
			t.Fatalf("UDP during the flood: %v", err)
		}
		dialTCP(t, addr, "127.1.0.9", true)
	})
}

// TestKeepalive: a TCP query asking for edns-tcp-keepalive learns the idle
// timeout (RFC 7828); over UDP the option is ignored.
func TestKeepalive(t *testing.T) {
	srv, _ := startServer(t, Listen{TCP: TCPLimits{Idle: 7 * time.Second}})
	q := new(dns.Msg)
	q.SetQuestion("www.example.test.", dns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE})
	for _, tt := range []struct {
		net, addr string
		want      uint16 // 0: no option
	}{
		{"tcp", srv.TCPAddrs()[0].String(), 70},
		{"udp", srv.UDPAddrs()[0].String(), 0},
	} {
		c := &dns.Client{Net: tt.net, Timeout: 2 * time.Second}
		m, _, err := c.Exchange(q, tt.addr)
		if err != nil {
			t.Fatal(err)
		}
		var got uint16
		for _, o := range m.IsEdns0().Option {
			if k, ok := o.(*dns.EDNS0_TCP_KEEPALIVE); ok {
				got = k.Timeout
			}
		}
		if got != tt.want || len(m.Answer) == 0 {
			t.Errorf("%s: keepalive %d, want %d; answer %v", tt.net, got, tt.want, m.Answer)
		}
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
	srv := NewServer(Listen{Addrs: []string{"127.0.0.1:0"}, TCP: tcpLimits(TCPLimits{Idle: time.Second, MaxConns: 4, MaxQueries: 10})}, h, discard())
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

// TestUDPBurstAnswered sends more queries at once than a batch holds, so
// the reader goes on past full batches and stops at a short one, then one
// more query: the short batch's wait for readiness must not miss it.
func TestUDPBurstAnswered(t *testing.T) {
	for _, poller := range []bool{false, true} {
		t.Run(fmt.Sprintf("poller=%v", poller), func(t *testing.T) {
			srv, _ := startServer(t, Listen{UDPPoller: poller})
			burstAnswered(t, srv.UDPAddrs()[0].String())
		})
	}
}

func burstAnswered(t *testing.T, addr string) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(id uint16) {
		q := new(dns.Msg)
		q.SetQuestion("www.example.test.", dns.TypeA)
		q.Id = id
		pkt, _ := q.Pack()
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	const n = 3*udpBatch + 5
	for id := range uint16(n) {
		send(id + 1)
	}
	seen := readReplies(t, c, n)
	send(n + 1)
	for id := range readReplies(t, c, 1) {
		seen[id] = true
	}
	for id := range uint16(n + 1) {
		if !seen[id+1] {
			t.Errorf("query %d not answered", id+1)
		}
	}
}

// readReplies reads n replies from c, each within a generous bound, and
// returns their ids.
func readReplies(t *testing.T, c net.Conn, n int) map[uint16]bool {
	t.Helper()
	seen := map[uint16]bool{}
	buf := make([]byte, dns.MaxMsgSize)
	for range n {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d replies: %v", len(seen), err)
		}
		var m dns.Msg
		if err := m.Unpack(buf[:k]); err != nil || m.Rcode != dns.RcodeSuccess {
			t.Fatalf("reply %v: %v", err, &m)
		}
		seen[m.Id] = true
	}
	return seen
}
