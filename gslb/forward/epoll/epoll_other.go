//go:build !linux

package epoll

import (
	"context"
	"log/slog"
	"net"
)

// Pollers is a no-op where there is no epoll: Wrap returns connections as
// they are, as a nil *Pollers does on Linux.
type Pollers struct{}

// New returns the loops of a process part that ends with ctx.
func New(context.Context, *slog.Logger) *Pollers { return &Pollers{} }

// Wrap returns c.
func (*Pollers) Wrap(c net.Conn) net.Conn { return c }
