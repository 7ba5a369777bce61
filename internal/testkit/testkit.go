package testkit

import (
	"bytes"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer collects output written by goroutines (a server's logger, exec's
// copying goroutine) while the test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Reset forgets what was written so far.
func (b *Buffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// Wait is how long Eventually polls: generous, because gossip, probes and
// reloads on a loaded 2-core CI machine take several times what they take
// on a quiet one, and a condition that holds returns at once anyway.
const Wait = 15 * time.Second

// Eventually polls cond every 10 ms until it holds, and fails the test
// naming what it waited for if it does not within Wait.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, Wait, what, cond)
}

// EventuallyWithin is Eventually with a deadline of the caller's.
func EventuallyWithin(t testing.TB, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", wait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FreePort returns a port that was free on ip for both UDP and TCP a moment
// ago, for servers that listen on both (DNS). Another process may still
// take it before the server binds; callers that start processes retry.
//
// The port lies below the kernel's ephemeral range, which it hands out to
// sockets bound to port 0. There, a client that sets SO_REUSEPORT, as dig
// and kdig do, can be given the port of a server that also sets it
// (Meridian's UDP sockets do), and its connected socket then receives its
// own queries; one dig query in about 25,000 did so in the ephemeral range.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	lo, hi := belowEphemeral()
	for range 50 {
		port := lo + rand.IntN(hi-lo)
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		pc.Close()
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatalf("no port free for both UDP and TCP on %s", ip)
	return 0
}

// belowEphemeral returns the ports [lo, hi) under the kernel's ephemeral
// range (32768 when it cannot be read), leaving the privileged ones out.
func belowEphemeral() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 2048 {
				hi = n
			}
		}
	}
	return max(1024, hi-16384), hi
}
