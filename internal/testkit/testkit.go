package testkit

import (
	"bytes"
	"net"
	"strconv"
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
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
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
