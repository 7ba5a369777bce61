//go:build linux

package dnsfront

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// block moves the socket out of Go's netpoller for serveBlocking: a dup of
// the descriptor in blocking mode, and conn closed (which takes the
// original out of epoll; the dup keeps the socket and its address).
func (u *udpServer) block() error {
	rc, err := u.conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("udp %s: %w", u.addr, err)
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return fmt.Errorf("udp %s: %w", u.addr, err)
	}
	if derr != nil {
		return fmt.Errorf("udp %s: dup: %w", u.addr, derr)
	}
	u.conn.Close()
	// O_NONBLOCK belongs to the open file, shared with the closed original;
	// os.NewFile leaves a blocking descriptor out of the netpoller.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return fmt.Errorf("udp %s: blocking mode: %w", u.addr, err)
	}
	u.sock = os.NewFile(uintptr(fd), "udp "+u.addr)
	return nil
}

// wakeBlocked wakes a loop blocked in recvmmsg on sock: close(2) would not,
// shutdown(2) with SHUT_RD does, and makes every later receive return at
// once. On an unconnected UDP socket it also says ENOTCONN, which is not a
// failure here.
func wakeBlocked(sock *os.File) error {
	rc, err := sock.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_RD) }); err != nil {
		return err
	}
	if serr != nil && !errors.Is(serr, unix.ENOTCONN) {
		return fmt.Errorf("shutdown: %w", serr)
	}
	return nil
}

// serveBlocking is serveBatch in gdnsd's model: the goroutine blocks in
// recvmmsg itself, so a datagram wakes its thread straight from the
// socket's wait queue, where the netpoller's loop goes through epoll_wait
// and the scheduler before its recvmmsg. The answers go out with one
// sendmmsg, as in serveBatch. The goroutine is not locked to its thread: a
// locked one would make each yield below a hand-off between two threads
// (docs/performance.md, "The DNS tail: blocking recvmmsg").
func (u *udpServer) serveBlocking() error {
	rc, err := u.sock.SyscallConn()
	if err != nil {
		return err
	}
	b := newBatch()
	for !u.closing.Load() {
		n, err := b.recvBlocking(rc)
		if err != nil {
			if u.stopped(err) {
				return nil
			}
			continue
		}
		b.sendWith(rc, b.sendWaitFn, b.answer(u.h, n), u)
	}
	return nil
}

// recvBlocking waits in the kernel for the first packet and takes what else
// is queued, up to udpBatch (MSG_WAITFORONE).
func (b *batch) recvBlocking(rc syscall.RawConn) (int, error) {
	err := rc.Read(b.recvWaitFn)
	if err == nil && b.errno != 0 {
		err = b.errno
	}
	return b.n, err
}

// recvWait is recvBlocking's call. It goes through syscall.Syscall: the
// scheduler may run other goroutines on the P while the thread sleeps.
func (b *batch) recvWait(fd uintptr) bool {
	b.resetIn()
	// A goroutine that never yields is "running" for as long as it
	// loops; after 10 ms of that, sysmon takes the P away at every
	// receive that blocks, and polls every 20 µs while it does.
	// Yielding here (on the same thread, unless other goroutines wait)
	// starts a new scheduling tick.
	runtime.Gosched()
	for {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.in[0])), udpBatch, unix.MSG_WAITFORONE, 0, 0)
		if e != unix.EINTR {
			b.n, b.errno = int(r), e
			return true
		}
	}
}

// sendWait is the blocking loop's send call. The send buffer is rarely
// full, so it first tries without blocking and without telling the
// scheduler; only a full buffer waits, as a blocking call.
func (b *batch) sendWait(fd uintptr) bool {
	msgs, vlen := uintptr(unsafe.Pointer(&b.out[b.sent])), uintptr(b.replies-b.sent)
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, msgs, vlen, unix.MSG_DONTWAIT, 0, 0)
	for e == unix.EAGAIN || e == unix.EINTR {
		r, _, e = unix.Syscall6(unix.SYS_SENDMMSG, fd, msgs, vlen, 0, 0, 0)
	}
	b.n, b.errno = int(r), e
	return true
}
