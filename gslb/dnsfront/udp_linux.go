//go:build linux

package dnsfront

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of recvmmsg(2) and sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// serveBatch is serve for sockets bound to one address: recvmmsg reads up
// to udpBatch queries, their answers go out in one sendmmsg, each to the
// address its query came from (the kernel's own sockaddr, reused as is).
//
// The calls are raw system calls made inside RawConn.Read and Write, which
// wait in the netpoller when the socket has nothing to give. A plain
// syscall.Syscall tells the Go scheduler it is leaving; a sendmmsg of a
// whole batch then outlasts sysmon's 20 µs, the scheduler hands the P to
// another thread, and the thread switches cost more than the answers.
// recvmmsg and sendmmsg never block here (MSG_DONTWAIT, and the socket is
// non-blocking), so the raw form is safe.
func (u *udpServer) serveBatch() error {
	rc, err := u.conn.SyscallConn()
	if err != nil {
		return err
	}
	b := newBatch()
	for {
		n, err := b.recv(rc)
		if err != nil {
			if u.stopped(err) {
				return nil
			}
			continue
		}
		if !b.send(rc, b.answer(u.h, n), u) {
			return nil
		}
	}
}

// batch is the memory of recvmmsg and sendmmsg calls: the messages, their
// buffers and addresses, and a scratch per query. It is allocated once,
// so the kernel's pointers into it stay put.
type batch struct {
	in     [udpBatch]mmsghdr
	out    [udpBatch]mmsghdr
	inIov  [udpBatch]unix.Iovec
	outIov [udpBatch]unix.Iovec
	names  [udpBatch]unix.RawSockaddrInet6 // large enough for either family
	bufs   [udpBatch][]byte
	scr    [udpBatch]*scratch
	req    dns.Msg

	// The calls made inside RawConn.Read and Write, as func values made
	// once, and what they return: a closure built per call, over locals,
	// would cost three allocations a call.
	recvFn, recvWaitFn, sendFn, sendWaitFn func(fd uintptr) bool
	n, sent, replies                       int
	errno                                  syscall.Errno
}

func newBatch() *batch {
	b := new(batch)
	for i := range b.in {
		b.bufs[i] = make([]byte, dns.MaxMsgSize)
		b.scr[i] = new(scratch)
		b.inIov[i].Base = &b.bufs[i][0]
		b.in[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.in[i].hdr.Iov = &b.inIov[i]
		b.in[i].hdr.SetIovlen(1)
		b.out[i].hdr.Iov = &b.outIov[i]
		b.out[i].hdr.SetIovlen(1)
	}
	b.recvFn, b.recvWaitFn = b.recvNow, b.recvWait
	b.sendFn, b.sendWaitFn = b.sendNow, b.sendWait
	return b
}

// recv reads up to udpBatch packets, waiting for the first.
func (b *batch) recv(rc syscall.RawConn) (int, error) {
	err := rc.Read(b.recvFn)
	if err == nil && b.errno != 0 {
		err = b.errno
	}
	return b.n, err
}

// recvNow is recv's call: false (wait for readiness) when nothing is
// queued.
func (b *batch) recvNow(fd uintptr) bool {
	b.resetIn()
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.in[0])), udpBatch, unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	b.n, b.errno = int(r), e
	return true
}

// resetIn makes every message of b.in take a whole buffer and address.
func (b *batch) resetIn() {
	for i := range b.in {
		b.in[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.inIov[i].SetLen(len(b.bufs[i]))
	}
}

// answer answers the n packets read and lines the replies up in b.out,
// each to its query's sender; it returns how many there are.
func (b *batch) answer(h *Handler, n int) int {
	replies := 0
	for i := range n {
		if b.in[i].hdr.Flags&unix.MSG_TRUNC != 0 {
			continue // larger than any DNS message: not one
		}
		b.scr[i].peerPort = sockaddrPort(&b.names[i])
		ans := h.answerPacket(b.scr[i], &b.req, b.bufs[i][:b.in[i].len], sockaddrAddr(&b.names[i]), true)
		if ans == nil {
			continue
		}
		o := &b.out[replies]
		o.hdr.Name = b.in[i].hdr.Name
		o.hdr.Namelen = b.in[i].hdr.Namelen
		b.outIov[replies].Base = &ans[0]
		b.outIov[replies].SetLen(len(ans))
		replies++
	}
	return replies
}

// send writes the replies; it reports false once the socket is closed
// for shutdown.
func (b *batch) send(rc syscall.RawConn, replies int, u *udpServer) bool {
	return b.sendWith(rc, b.sendFn, replies, u)
}

// sendWith writes the replies with call (sendNow or sendWait), skipping
// any one that fails; false once the socket is closed for shutdown.
func (b *batch) sendWith(rc syscall.RawConn, call func(uintptr) bool, replies int, u *udpServer) bool {
	for b.sent, b.replies = 0, replies; b.sent < replies; {
		if err := rc.Write(call); err != nil {
			return !u.closing.Load() && !errors.Is(err, net.ErrClosed)
		}
		k := b.n
		if b.errno != 0 {
			// The first message of the rest failed (a client that
			// cannot be reached): skip it, send the others.
			u.h.log.Debug("udp write", "err", b.errno)
			k = 1
		}
		b.sent += k
	}
	return true
}

// sendNow is send's call: false (wait for room) when the buffer is full.
func (b *batch) sendNow(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.out[b.sent])), uintptr(b.replies-b.sent), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	b.n, b.errno = int(r), e
	return true
}

// sockaddrPort reads the source port of a sockaddr_in or sockaddr_in6
// (the same place in both), which the kernel writes in network order.
func sockaddrPort(sa *unix.RawSockaddrInet6) uint16 {
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	return uint16(p[0])<<8 | uint16(p[1])
}

// sockaddrAddr reads the source address the kernel wrote into a
// sockaddr_in or sockaddr_in6, without going through net.UDPAddr.
func sockaddrAddr(sa *unix.RawSockaddrInet6) netip.Addr {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrFrom4(sa4.Addr)
	case unix.AF_INET6:
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}
