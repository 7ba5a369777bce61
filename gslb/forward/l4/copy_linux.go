//go:build linux

package l4

import (
	"io"
	"net"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// copyBuf is the size of the buffers small exchanges are copied through;
// a read that fills one marks a bulk transfer, which goes on with splice.
const copyBuf = 32 << 10

// copyBufs holds the buffers between messages, so an idle connection
// holds none.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBuf); return &b }}

// copyConn copies src to dst as io.Copy does (nil at src's end, else the
// error), with raw read and write calls made inside RawConn.Read and
// Write, which wait in the netpoller when a socket is not ready. io.Copy's
// splice(2) goes through syscall.Syscall, which tells the scheduler the
// goroutine is leaving: sysmon then wakes every 20 µs to take the P from
// threads in system calls (9% of the forwarder's CPU in a profile of
// small keep-alive requests). Once a read fills the buffer the rest goes
// through io.Copy, whose splice keeps bulk bytes out of user space.
func copyConn(dst, src *net.TCPConn) (int64, error) {
	rsrc, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	rdst, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	var r rawCopy
	read, write := r.read, r.write // bound once per call, not per message
	var total int64
	for {
		r.n, r.errno = 0, 0
		err := rsrc.Read(read)
		if err == nil && r.errno != 0 {
			err = r.errno
		}
		n := r.n
		if err == nil && n > 0 {
			r.off = 0
			err = rdst.Write(write)
			if err == nil && r.errno != 0 {
				err = r.errno
			}
			total += int64(r.off)
		}
		r.release()
		switch {
		case err != nil:
			return total, err
		case n == 0:
			return total, nil // the peer's FIN
		case n == copyBuf:
			m, err := io.Copy(dst, src)
			return total + m, err
		}
	}
}

// rawCopy is one direction's state for the callbacks of RawConn.Read and
// Write. The socket calls are raw: the sockets are non-blocking, so the
// calls never block.
type rawCopy struct {
	bp     *[]byte // from copyBufs while a message is in hand
	n, off int
	errno  syscall.Errno
}

// read takes a buffer only for the call that finds data: one waiting for
// readiness has given it back.
func (r *rawCopy) read(fd uintptr) bool {
	if r.bp == nil {
		r.bp = copyBufs.Get().(*[]byte)
	}
	b := *r.bp
	n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e == unix.EAGAIN || e == unix.EINTR {
		r.release()
		return false
	}
	r.n, r.errno = int(n), e
	return true
}

func (r *rawCopy) release() {
	if r.bp != nil {
		copyBufs.Put(r.bp)
		r.bp = nil
	}
}

func (r *rawCopy) write(fd uintptr) bool {
	b := (*r.bp)[:r.n]
	for r.off < len(b) {
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[r.off])), uintptr(len(b)-r.off))
		if e == unix.EAGAIN {
			return false
		}
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			r.errno = e
			return true
		}
		r.off += int(n)
	}
	return true
}
