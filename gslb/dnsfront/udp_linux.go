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
	var (
		in     [udpBatch]mmsghdr
		out    [udpBatch]mmsghdr
		inIov  [udpBatch]unix.Iovec
		outIov [udpBatch]unix.Iovec
		names  [udpBatch]unix.RawSockaddrInet6 // large enough for either family
		bufs   [udpBatch][]byte
		scr    [udpBatch]*scratch
	)
	for i := range in {
		bufs[i] = make([]byte, dns.MaxMsgSize)
		scr[i] = new(scratch)
		inIov[i].Base = &bufs[i][0]
		in[i].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
		in[i].hdr.Iov = &inIov[i]
		in[i].hdr.SetIovlen(1)
		out[i].hdr.Iov = &outIov[i]
		out[i].hdr.SetIovlen(1)
	}
	var req dns.Msg
	for {
		var n int
		var errno syscall.Errno
		err := rc.Read(func(fd uintptr) bool {
			for i := range in {
				in[i].hdr.Namelen = unix.SizeofSockaddrInet6
				inIov[i].SetLen(len(bufs[i]))
			}
			r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&in[0])), udpBatch, unix.MSG_DONTWAIT, 0, 0)
			if e == unix.EAGAIN || e == unix.EINTR {
				return false
			}
			n, errno = int(r), e
			return true
		})
		if err == nil && errno != 0 {
			err = errno
		}
		if err != nil {
			if u.stopped(err) {
				return nil
			}
			continue
		}

		replies := 0
		for i := range n {
			if in[i].hdr.Flags&unix.MSG_TRUNC != 0 {
				continue // larger than any DNS message: not one
			}
			ans := u.h.answerPacket(scr[i], &req, bufs[i][:in[i].len], sockaddrAddr(&names[i]), true)
			if ans == nil {
				continue
			}
			o := &out[replies]
			o.hdr.Name = in[i].hdr.Name
			o.hdr.Namelen = in[i].hdr.Namelen
			outIov[replies].Base = &ans[0]
			outIov[replies].SetLen(len(ans))
			replies++
		}
		for sent := 0; sent < replies; {
			var k int
			var errno syscall.Errno
			err := rc.Write(func(fd uintptr) bool {
				r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&out[sent])), uintptr(replies-sent), unix.MSG_DONTWAIT, 0, 0)
				if e == unix.EAGAIN || e == unix.EINTR {
					return false
				}
				k, errno = int(r), e
				return true
			})
			if err != nil {
				if u.closing.Load() || errors.Is(err, net.ErrClosed) {
					return nil
				}
				break
			}
			if errno != 0 {
				// The first message of the rest failed (a client that
				// cannot be reached): skip it, send the others.
				u.h.log.Debug("udp write", "err", errno)
				k = 1
			}
			sent += k
		}
	}
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
