package dnsfront

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb/dnsfront/xfr"
	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpServer reads one UDP socket and answers each query inline on the
// reading goroutine. miekg/dns's server starts a goroutine and allocates a
// message per packet; for the small, CPU-bound answers of an authoritative
// server that handoff costs more than the answer, so UDP, the hot transport,
// gets this loop, and TCP stays on dns.Server.
type udpServer struct {
	conn *net.UDPConn // closed once sock takes the socket over
	// sock is the socket of the blocking loop (Linux, see udp_block_linux.go):
	// the same socket as conn, out of the netpoller; nil for the others.
	sock *os.File
	addr string
	h    *Handler
	// session is set for sockets bound to a wildcard address: the reply must
	// leave from the address the query was sent to, which only the packet's
	// control message (IP_PKTINFO) tells.
	session bool
	closing atomic.Bool
	done    chan struct{}
}

// newUDPServer serves conn; session says whether replies need the packet's
// destination address (see udpServer.session).
func newUDPServer(conn *net.UDPConn, h *Handler, session bool) (*udpServer, error) {
	u := &udpServer{conn: conn, addr: conn.LocalAddr().String(), h: h, session: session, done: make(chan struct{})}
	if session {
		err6 := ipv6.NewPacketConn(conn).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
		err4 := ipv4.NewPacketConn(conn).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
		if err4 != nil && err6 != nil {
			return nil, err4
		}
	}
	return u, nil
}

// udpBatch is how many packets one recvmmsg/sendmmsg call moves. Under load
// the kernel's per-call cost is shared by the batch; when idle, a call
// returns with the one packet there is.
const udpBatch = 16

// serve runs until shutdown closes the socket.
func (u *udpServer) serve() error {
	defer close(u.done)
	switch {
	case u.session:
		return u.serveSession()
	case u.sock != nil:
		return u.serveBlocking()
	}
	return u.serveBatch()
}

// serveSession is serve for wildcard addresses: one packet at a time, each
// reply sent from the address its query was sent to.
func (u *udpServer) serveSession() error {
	buf := make([]byte, dns.MaxMsgSize)
	s := new(scratch)
	var req dns.Msg
	for {
		n, session, err := dns.ReadFromSessionUDP(u.conn, buf)
		if err != nil {
			if u.stopped(err) {
				return nil
			}
			continue
		}
		peer := session.RemoteAddr().(*net.UDPAddr).AddrPort()
		s.peerPort = peer.Port()
		out := u.h.answerPacket(s, &req, buf[:n], peer.Addr(), true)
		if out == nil {
			continue
		}
		if _, err := dns.WriteToSessionUDP(u.conn, out, session); err != nil {
			u.h.log.Debug("udp write", "err", err)
		}
	}
}

// stopped judges a read error: true when the socket was closed for
// shutdown; anything else but the deadline that wakes a read at shutdown
// is logged, and the loop reads on.
func (u *udpServer) stopped(err error) bool {
	if u.closing.Load() || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		u.h.log.Warn("udp read", "addr", u.addr, "err", err)
	}
	return false
}

// shutdown stops reading; the answer being built when it is called is still
// sent, because the loop only checks for shutdown between packets.
func (u *udpServer) shutdown(deadline time.Time) error {
	u.closing.Store(true)
	if u.sock != nil {
		if err := wakeBlocked(u.sock); err != nil {
			return fmt.Errorf("udp %s: %w", u.addr, err)
		}
	} else {
		u.conn.SetReadDeadline(time.Now())
	}
	select {
	case <-u.done:
	case <-time.After(time.Until(deadline)):
	}
	return u.close()
}

// close closes the socket; a blocking loop still inside a receive keeps
// the descriptor until it returns (os.File counts its users), so the
// number cannot be reused under it.
func (u *udpServer) close() error {
	if u.sock != nil {
		return u.sock.Close()
	}
	return u.conn.Close()
}

// answerPacket answers a raw packet from either transport, or returns nil to stay silent: the
// fast path when it can, else unpack into req (reused packet after packet)
// and the full path. A packet that does not unpack gets FORMERR.
func (h *Handler) answerPacket(s *scratch, req *dns.Msg, pkt []byte, client netip.Addr, udp bool) (out []byte) {
	if len(pkt) < headerLen {
		return nil // not even a header: any reply could be used to reflect
	}
	if pkt[2]&0x80 != 0 {
		return nil // QR set: never answer an answer, that is how reflection loops start
	}
	defer h.recoverServfail(s, pkt, &out)
	// Reading the clock costs more than a fast answer on some machines,
	// so one query in latencySample is timed.
	var start time.Time
	if s.timed++; s.timed%latencySample == 0 {
		start = time.Now()
	}
	st := h.state.Load()
	if udp && st.Transfers != nil && xfr.IsTransfer(pkt) {
		return st.Transfers.AnswerUDP(pkt, client) // IXFR over UDP: the SOA alone
	}
	tap := tapped(st)
	if out = h.fastAnswer(st, s, pkt, client, udp); out == nil {
		if err := req.Unpack(pkt); err != nil || !questionWhole(pkt) {
			out = headerReply(s, pkt, dns.RcodeFormatError)
			s.info = queryInfo{}
		} else {
			out = h.answer(st, s, req, udp, client)
		}
	}
	if udp {
		// Over TCP the client's address is proven: only UDP replies can
		// be reflected at a spoofed one.
		out = h.limit(st, s, out, client)
	}
	h.count(st, s, out, udp, start)
	if tap {
		h.tap(st.Dnstap, s, pkt, out, client, udp)
	}
	return out
}

// questionWhole reports whether pkt's questions end within it: miekg/dns
// unpacks a question cut off after its name as type 0, class 0, which is
// FORMERR, not a question to answer.
func questionWhole(pkt []byte) bool {
	off := headerLen
	for range binary.BigEndian.Uint16(pkt[4:]) {
		for {
			if off >= len(pkt) {
				return false
			}
			l := int(pkt[off])
			if l&0xC0 == 0xC0 { // a compression pointer ends the name
				off += 2
				break
			}
			off += 1 + l
			if l == 0 {
				break
			}
		}
		if off += 4; off > len(pkt) {
			return false
		}
	}
	return true
}

// recoverServfail turns a panic while answering into a logged SERVFAIL for
// that one query, so that a bug hit by one packet cannot take the server,
// and every zone on it, down.
func (h *Handler) recoverServfail(s *scratch, pkt []byte, out *[]byte) {
	if r := recover(); r != nil {
		h.log.Error("panic while answering; sent SERVFAIL", "panic", r, "query", fmt.Sprintf("%x", pkt), "stack", string(debug.Stack()))
		*out = headerReply(s, pkt, dns.RcodeServerFailure)
	}
}

// headerReply answers with a bare header: the query's id, opcode and RD,
// QR set, the given rcode and no sections, as miekg/dns's server does for a
// packet it cannot unpack.
func headerReply(s *scratch, pkt []byte, rcode int) []byte {
	out := append(s.buf[:0], pkt[:headerLen]...)
	const keep = 0x7900 // opcode and RD bits
	bits := binary.BigEndian.Uint16(pkt[2:])&keep | 1<<15 | uint16(rcode&0xF)
	binary.BigEndian.PutUint16(out[2:], bits)
	clear(out[4:headerLen])
	return out
}

// isWildcard reports whether conn is bound to 0.0.0.0 or ::.
func isWildcard(conn *net.UDPConn) bool {
	ap, ok := netip.AddrFromSlice(conn.LocalAddr().(*net.UDPAddr).IP)
	return ok && ap.IsUnspecified()
}
