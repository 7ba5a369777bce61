//go:build !linux

package dnsfront

import (
	"net"
	"net/netip"
	"os"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchConn is the batch read/write pair x/net offers for both families
// (ipv4.Message and ipv6.Message are one type).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// serveBatch is serve for sockets bound to one address: packets are read
// and their answers written udpBatch at a time.
func (u *udpServer) serveBatch() error {
	var bc batchConn = ipv4.NewPacketConn(u.conn)
	if u.conn.LocalAddr().(*net.UDPAddr).IP.To4() == nil {
		bc = ipv6.NewPacketConn(u.conn)
	}
	in := make([]ipv4.Message, udpBatch)
	out := make([]ipv4.Message, udpBatch)
	scratches := make([]*scratch, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, dns.MaxMsgSize)}
		out[i].Buffers = make([][]byte, 1)
		scratches[i] = new(scratch)
	}
	var req dns.Msg
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if u.stopped(err) {
				return nil
			}
			continue
		}
		replies := 0
		for i := range n {
			var client netip.Addr
			if ua, ok := in[i].Addr.(*net.UDPAddr); ok {
				client, scratches[i].peerPort = ua.AddrPort().Addr(), ua.AddrPort().Port()
			}
			ans := u.h.answerPacket(scratches[i], &req, in[i].Buffers[0][:in[i].N], client, true)
			if ans == nil {
				continue
			}
			out[replies].Buffers[0] = ans
			out[replies].Addr = in[i].Addr
			replies++
		}
		for sent := 0; sent < replies; {
			k, err := bc.WriteBatch(out[sent:replies], 0)
			if err != nil {
				// One unreachable client must not cost the rest of the
				// batch their answers: skip the message that failed.
				u.h.log.Debug("udp write", "err", err)
				k++
			}
			sent += k
		}
	}
}

// block leaves the socket in the netpoller: the blocking loop is Linux's.
func (u *udpServer) block() error { return nil }

// serveBlocking is never reached off Linux (block leaves sock nil).
func (u *udpServer) serveBlocking() error { return u.serveBatch() }

// wakeBlocked has nothing to wake off Linux.
func wakeBlocked(*os.File) error { return nil }
