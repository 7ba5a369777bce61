//go:build !linux

package l4

import (
	"io"
	"net"
)

// copyConn is io.Copy where the readiness copy of copy_linux.go is not
// built.
func copyConn(dst, src *net.TCPConn) (int64, error) { return io.Copy(dst, src) }
