//go:build linux

package epoll

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// pair returns a connection moved onto a loop and its peer, a plain
// *net.TCPConn, both closed when the test ends.
func pair(t *testing.T, ps *Pollers) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := ps.Wrap(c).(*Conn)
	if !ok {
		t.Fatalf("Wrap returned %T, want *Conn", c)
	}
	t.Cleanup(func() { ec.Close() })
	return ec, peer
}

func pollers(t *testing.T) (*Pollers, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return New(ctx, slog.New(slog.DiscardHandler)), cancel
}

// TestExchanges is what a proxy does to a keep-alive backend: many
// connections at once, each writing a request and reading the answer,
// which comes in after the read found the socket empty. A lost wake-up
// shows as a read that times out with the answer queued.
func TestExchanges(t *testing.T) {
	ps, _ := pollers(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello"))
	}))
	defer srv.Close()
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			c = ps.Wrap(c)
			defer c.Close()
			buf := make([]byte, 4096)
			for i := range 300 {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
					t.Errorf("connection %d, request %d: %v", g, i, err)
					return
				}
				have := 0
				for !bytes.HasSuffix(buf[:have], []byte("\r\n\r\nhello")) {
					n, err := c.Read(buf[have:])
					if err != nil {
						t.Errorf("connection %d, request %d, after %q: %v", g, i, buf[:have], err)
						return
					}
					have += n
				}
			}
		})
	}
	wg.Wait()
}

// TestDataThenEOF: bytes and the peer's FIN that arrive together are
// both read, the FIN as io.EOF at once, though a short read took the
// bytes and no event follows it.
func TestDataThenEOF(t *testing.T) {
	ps, _ := pollers(t)
	for i := range 50 {
		c, peer := pair(t, ps)
		peer.Write([]byte("last words"))
		peer.(*net.TCPConn).CloseWrite()
		time.Sleep(time.Millisecond) // both queued before the first read
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "last words" {
			t.Fatalf("round %d: read %q, %v; want the bytes, then end of file", i, got, err)
		}
	}
}

func TestDeadlines(t *testing.T) {
	ps, _ := pollers(t)
	c, _ := pair(t, ps)
	buf := make([]byte, 10)

	start := time.Now()
	c.SetReadDeadline(start.Add(50 * time.Millisecond))
	_, err := c.Read(buf)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	if took := time.Since(start); took < 40*time.Millisecond || took > 2*time.Second {
		t.Errorf("the deadline ended the read after %v, want about 50ms", took)
	}

	// A deadline set in the past ends a read in progress: how a drain
	// aborts a request.
	c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := c.Read(buf); done <- err }()
	time.Sleep(20 * time.Millisecond)
	c.SetReadDeadline(time.Unix(1, 0))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("aborted read: %v, want a timeout", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a past deadline did not end the read in progress")
	}

	// A deadline moved later before it fires does not end the read.
	c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	c.SetReadDeadline(time.Now().Add(time.Hour))
	go func() { _, err := c.Read(buf); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("read ended by a deadline that was moved: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("read ended by Close: %v, want net.ErrClosed", err)
	}
}

// TestLargeWrite writes more than the socket buffers hold, so that
// writes wait for room, to a peer that reads slowly.
func TestLargeWrite(t *testing.T) {
	ps, _ := pollers(t)
	c, peer := pair(t, ps)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 64<<10)
		for b.Len() < len(msg) {
			time.Sleep(time.Millisecond)
			n, err := peer.Read(buf)
			if err != nil {
				break
			}
			b.Write(buf[:n])
		}
		got <- b.Bytes()
	}()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Write(msg); err != nil || n != len(msg) {
		t.Fatalf("write: %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, msg) {
		t.Errorf("the peer read %d bytes, not what was written (%d)", len(b), len(msg))
	}
}

func TestOpen(t *testing.T) {
	ps, _ := pollers(t)
	c, peer := pair(t, ps)
	if !c.Open() {
		t.Fatal("an idle connection reads as closed")
	}
	peer.Close()
	testkit.EventuallyWithin(t, 2*time.Second, "a connection its peer closed reads as not open", func() bool { return !c.Open() })
}

// TestLoopEnd: when the loops stop (the forwarder's context ends), a
// read waiting on one returns an error instead of waiting forever.
func TestLoopEnd(t *testing.T) {
	ps, cancel := pollers(t)
	c, _ := pair(t, ps)
	done := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 1)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("read returned no error after the loop stopped")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a read still waits after its loop stopped")
	}
}

// TestClosedDescriptor: Close closes the descriptor (the process's open
// descriptors return to their count), and calls after it fail.
func TestClosedDescriptor(t *testing.T) {
	ps, _ := pollers(t)
	c, _ := pair(t, ps) // starts the loops first: their descriptors stay
	c.Close()
	before := openFDs(t)
	for range 20 {
		c, peer := pair(t, ps)
		c.Close()
		peer.Close()
	}
	if after := openFDs(t); after > before {
		t.Errorf("%d descriptors open after 20 connections came and went, %d before", after, before)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after Close: %v, want net.ErrClosed", err)
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestWrapLeavesOtherConns(t *testing.T) {
	ps, _ := pollers(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := ps.Wrap(a); got != a {
		t.Errorf("Wrap(net.Pipe) = %T, want the pipe itself", got)
	}
}

// TestQuiet: a connection whose last read found it empty is quiet until
// the peer sends bytes or its FIN, which the loop sees without a read.
func TestQuiet(t *testing.T) {
	ps, _ := pollers(t)
	c, peer := pair(t, ps)
	if c.Quiet() {
		t.Fatal("quiet before any read found the socket empty")
	}
	peer.Write([]byte("answer"))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if !c.Quiet() {
		t.Fatal("not quiet after a short read and nothing since")
	}
	peer.Close()
	testkit.EventuallyWithin(t, 2*time.Second, "not quiet once the peer closed", func() bool { return !c.Quiet() })
	if c.Open() {
		t.Error("Open after the peer closed")
	}
}
