package l4

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// copyModes are the two ways a TCP session is copied: the event loop
// (where it is built) and a goroutine per direction.
var copyModes = []struct {
	name       string
	goroutines bool
}{{"loop", false}, {"goroutines", true}}

// proxyRig is a TCP listener in front of one backend.
type proxyRig struct {
	env    *Env
	l      Listener
	snap   *snapshot
	cancel context.CancelFunc
}

// startProxy starts a listener for backend with extra lines in its
// [[listener]] table; Cleanup stops it and checks that every session
// ended.
func startProxy(t *testing.T, goroutines bool, backend, extra string) *proxyRig {
	t.Helper()
	cfg, snap := testConfig(t, fmt.Sprintf(`[[pool]]
name = "p"
[pool.check]
type = "none"
[[pool.backend]]
address = %q
[[listener]]
name = "l"
listen = "127.0.0.1:0"
pool = "p"
%s
`, backend, extra))
	ctx, cancel := context.WithCancel(context.Background())
	env := &Env{Ctx: ctx, Log: slog.New(slog.DiscardHandler), Current: func() Snapshot { return snap }, goroutineCopy: goroutines}
	l, err := Bind(env, cfg.Listeners[0])
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go l.Serve()
	r := &proxyRig{env: env, l: l, snap: snap, cancel: cancel}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop stops the listener, waits for its sessions and stops the loops.
func (r *proxyRig) stop(t *testing.T) {
	t.Helper()
	r.l.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.l.Wait(ctx)
	if n := r.l.(*TCPListener).active.Load(); n != 0 {
		t.Errorf("%d sessions still active after the listener stopped", n)
	}
	r.cancel()
	r.env.loops.wait()
}

func (r *proxyRig) dial(t *testing.T) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", r.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

// tcpBackend serves each connection with handle.
func tcpBackend(t *testing.T, handle func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				handle(c.(*net.TCPConn))
			})
		}
	})
	return ln.Addr().String()
}

// pattern is n bytes that show where they were cut or reordered.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/7) + seed
	}
	return b
}

// slowRead reads c to its end, pausing now and then so that the peer
// fills the socket buffers.
func slowRead(c net.Conn) ([]byte, error) {
	var out bytes.Buffer
	b := make([]byte, 16<<10)
	for i := 0; ; i++ {
		n, err := c.Read(b)
		out.Write(b[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
		if i%8 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// A large transfer both ways at once, each side reading slowly: the
// proxy holds back what a full socket will not take, and both streams
// arrive whole, each side's end passed on as a half-close.
func TestCopyBulkBothWays(t *testing.T) {
	const size = 6 << 20
	up, down := pattern(size, 1), pattern(size, 2)
	for _, m := range copyModes {
		t.Run(m.name, func(t *testing.T) {
			heard := make(chan []byte, 1)
			backend := tcpBackend(t, func(c *net.TCPConn) {
				go func() { c.Write(down); c.CloseWrite() }()
				b, _ := slowRead(c)
				heard <- b
			})
			r := startProxy(t, m.goroutines, backend, "")
			c := r.dial(t)
			go func() { c.Write(up); c.CloseWrite() }()
			got, err := slowRead(c)
			if err != nil || !bytes.Equal(got, down) {
				t.Errorf("client got %d bytes (%v), want the backend's %d", len(got), err, size)
			}
			if b := <-heard; !bytes.Equal(b, up) {
				t.Errorf("backend got %d bytes, want the client's %d", len(b), size)
			}
			st := r.snap.pools["p"].Backends[0].State
			r.stop(t)
			if st.Sent.Load() != size || st.Received.Load() != size {
				t.Errorf("counted %d sent, %d received; want %d each", st.Sent.Load(), st.Received.Load(), size)
			}
		})
	}
}

// Each side may finish first; the other direction carries on after the
// half-close, and the session ends when both are done.
func TestCopyHalfClose(t *testing.T) {
	for _, m := range copyModes {
		for _, clientFirst := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/client_first=%v", m.name, clientFirst), func(t *testing.T) {
				backend := tcpBackend(t, func(c *net.TCPConn) {
					if clientFirst {
						b, _ := io.ReadAll(c)
						fmt.Fprintf(c, "got %q", b)
						return
					}
					io.WriteString(c, "hello")
					c.CloseWrite()
					if b, _ := io.ReadAll(c); string(b) != "after" {
						t.Errorf("backend heard %q after its half-close, want %q", b, "after")
					}
				})
				r := startProxy(t, m.goroutines, backend, "")
				c := r.dial(t)
				if clientFirst {
					io.WriteString(c, "bye")
					c.CloseWrite()
					if b, err := io.ReadAll(c); err != nil || string(b) != `got "bye"` {
						t.Errorf("after the client's half-close: %q, %v", b, err)
					}
					return
				}
				if b, err := io.ReadAll(c); err != nil || string(b) != "hello" {
					t.Errorf("before the client's half-close: %q, %v", b, err)
				}
				io.WriteString(c, "after")
				c.CloseWrite()
				var b [1]byte
				if _, err := c.Read(b[:]); err != io.EOF {
					t.Errorf("after both half-closes: %v, want EOF", err)
				}
			})
		}
	}
}

// A drain's Abort closes a session whose copy is held up by a peer that
// reads nothing.
func TestCopyAbortWhileBlocked(t *testing.T) {
	for _, m := range copyModes {
		t.Run(m.name, func(t *testing.T) {
			var written atomic.Int64
			backend := tcpBackend(t, func(c *net.TCPConn) {
				b := make([]byte, 64<<10)
				for {
					n, err := c.Write(b)
					written.Add(int64(n))
					if err != nil {
						return
					}
				}
			})
			r := startProxy(t, m.goroutines, backend, "")
			c := r.dial(t)
			// Let the buffers fill: the client reads nothing, and the
			// backend's writes stop.
			for i, last := 0, int64(-1); i < 100 && written.Load() != last; i++ {
				last = written.Load()
				time.Sleep(50 * time.Millisecond)
			}
			r.snap.pools["p"].Backends[0].State.AbortAll()
			if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !isReset(err) {
				t.Errorf("reading after the abort: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r.l.Wait(ctx)
			if n := r.l.(*TCPListener).active.Load(); n != 0 {
				t.Errorf("%d sessions active after the abort", n)
			}
		})
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// A session with no bytes either way for idle_timeout is closed.
func TestCopyIdleTimeout(t *testing.T) {
	for _, m := range copyModes {
		t.Run(m.name, func(t *testing.T) {
			backend := tcpBackend(t, func(c *net.TCPConn) { io.Copy(c, c) })
			r := startProxy(t, m.goroutines, backend, `idle_timeout = "300ms"`)
			c := r.dial(t)
			io.WriteString(c, "x")
			var b [1]byte
			if _, err := io.ReadFull(c, b[:]); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if _, err := c.Read(b[:]); err != io.EOF {
				t.Errorf("the quiet session: %v, want EOF", err)
			}
			if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
				t.Errorf("closed after %v of quiet, with idle_timeout 300ms", d)
			}
		})
	}
}

// A client that resets, or a backend that closes first, ends the session
// and the other side sees it.
func TestCopyPeerGoes(t *testing.T) {
	for _, m := range copyModes {
		t.Run(m.name+"/client_reset", func(t *testing.T) {
			ended := make(chan error, 1)
			backend := tcpBackend(t, func(c *net.TCPConn) {
				_, err := io.Copy(c, c)
				ended <- err
			})
			r := startProxy(t, m.goroutines, backend, "")
			c := r.dial(t)
			io.WriteString(c, "x")
			var b [1]byte
			if _, err := io.ReadFull(c, b[:]); err != nil {
				t.Fatal(err)
			}
			c.SetLinger(0)
			c.Close()
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the backend's connection outlived the client's reset")
			}
		})
		t.Run(m.name+"/backend_closes", func(t *testing.T) {
			backend := tcpBackend(t, func(c *net.TCPConn) { io.WriteString(c, "bye") })
			r := startProxy(t, m.goroutines, backend, "")
			c := r.dial(t)
			if b, err := io.ReadAll(c); err != nil || string(b) != "bye" {
				t.Errorf("got %q, %v; want the backend's bye, then EOF", b, err)
			}
			c.Close()
		})
	}
}

// Many connections at once, each with many short exchanges at random
// pauses: none stalls (a lost wake-up would hold one until the deadline).
func TestCopyManySmallExchanges(t *testing.T) {
	const conns, exchanges = 200, 30
	for _, m := range copyModes {
		t.Run(m.name, func(t *testing.T) {
			backend := tcpBackend(t, func(c *net.TCPConn) { io.Copy(c, c) })
			r := startProxy(t, m.goroutines, backend, "")
			errs := make(chan error, conns)
			var wg sync.WaitGroup
			for i := range conns {
				c := r.dial(t)
				c.SetDeadline(time.Now().Add(30 * time.Second))
				wg.Go(func() { errs <- exchange(c, i, exchanges) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// exchange writes lines on c and reads each back, pausing at random.
func exchange(c *net.TCPConn, id, n int) error {
	defer c.Close()
	br := bufio.NewReader(c)
	rng := rand.New(rand.NewPCG(uint64(id), 1))
	for j := range n {
		want := fmt.Sprintf("conn %d line %d %s\n", id, j, bytes.Repeat([]byte("y"), rng.IntN(2000)))
		if _, err := io.WriteString(c, want); err != nil {
			return fmt.Errorf("conn %d write %d: %w", id, j, err)
		}
		got, err := br.ReadString('\n')
		if err != nil || got != want {
			return fmt.Errorf("conn %d exchange %d: %d bytes back (%v), want %d", id, j, len(got), err, len(want))
		}
		if rng.IntN(4) == 0 {
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		}
	}
	c.CloseWrite()
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("conn %d: %v after the half-close, want EOF", id, err)
	}
	return nil
}

// Once the listener and its loops have stopped, no goroutine and no file
// descriptor of the sessions is left.
func TestCopyLeavesNothing(t *testing.T) {
	for _, m := range copyModes {
		t.Run(m.name, func(t *testing.T) {
			backend := tcpBackend(t, func(c *net.TCPConn) { io.Copy(c, c) })
			fds0, g0 := openFDs(t), runtime.NumGoroutine()
			r := startProxy(t, m.goroutines, backend, "")
			var cs []*net.TCPConn
			for range 20 {
				c := r.dial(t)
				io.WriteString(c, "x")
				var b [1]byte
				if _, err := io.ReadFull(c, b[:]); err != nil {
					t.Fatal(err)
				}
				cs = append(cs, c)
			}
			r.l.Stop() // established sessions carry on
			for _, c := range cs {
				c.Close()
			}
			r.stop(t)
			var fds, g int
			for range 200 {
				if fds, g = openFDs(t), runtime.NumGoroutine(); fds <= fds0 && g <= g0 {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Errorf("after stopping: %d file descriptors (%d before), %d goroutines (%d before)", fds, fds0, g, g0)
		})
	}
}

func openFDs(t *testing.T) int {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(des)
}
