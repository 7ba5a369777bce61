package l7

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/gslb/forward/epoll"
	"github.com/meridian-gslb/meridian/internal/testkit"
)

// A kept backend connection reads as open while idle, and as not open
// once the backend closes it or sends something unasked: on an epoll
// loop (its readiness, then its own read), and on Go's netpoller, where
// connections stay on other systems or when no loop starts (a nil
// *epoll.Pollers runs none).
func TestBackendOpen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loops := epoll.New(ctx, slog.New(slog.DiscardHandler))
	for _, polls := range []struct {
		name  string
		polls *epoll.Pollers
		want  string // the connection's type after Wrap
	}{
		{"epoll loop", loops, "*epoll.Conn"},
		{"netpoller", nil, "*net.TCPConn"},
	} {
		for _, tc := range []struct {
			name    string
			backend func(net.Conn)
		}{
			{"closed", func(c net.Conn) { c.Close() }},
			{"unasked bytes", func(c net.Conn) { c.Write([]byte("HTTP/1.1 408 Request Timeout\r\n\r\n")) }},
		} {
			t.Run(polls.name+"/"+tc.name, func(t *testing.T) {
				be, backend := keptBackend(t, polls.polls)
				if got := fmt.Sprintf("%T", be.conn.Conn); got != polls.want {
					t.Fatalf("the connection is a %s, want %s", got, polls.want)
				}
				// An answer read to its end, as before the connection
				// is kept: on a loop, open then goes by its readiness.
				backend.Write([]byte("answer"))
				be.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				if n, err := be.conn.Read(make([]byte, 64)); err != nil || n != len("answer") {
					t.Fatalf("reading the answer: %d bytes, %v", n, err)
				}
				be.idleAt = time.Now() // kept now, as put does
				if !be.open(time.Now()) {
					t.Fatal("an idle connection reads as not open")
				}
				tc.backend(backend)
				// Well within h1FreshIdle, where a loop's connection is
				// judged by its readiness alone.
				testkit.EventuallyWithin(t, h1FreshIdle/2, "the connection reads as not open", func() bool {
					return !be.open(time.Now())
				})
			})
		}
	}
}

// keptBackend returns a backend connection as the transport keeps it,
// moved onto polls, and the backend's end.
func keptBackend(t *testing.T, polls *epoll.Pollers) (*h1Backend, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	backend, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	c = polls.Wrap(c)
	be := &h1Backend{conn: &timedConn{Conn: c}, live: livenessOf(c)}
	t.Cleanup(func() { be.conn.Close() })
	return be, backend
}
