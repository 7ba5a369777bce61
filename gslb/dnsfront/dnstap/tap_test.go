package dnstap

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	dnstappb "github.com/dnstap/golang-dnstap"
	framestream "github.com/farsightsec/golang-framestream"
	"google.golang.org/protobuf/proto"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func valid(c Config) Config {
	c.SetDefaults()
	return c
}

// readFrames decodes a dnstap file.
func readFrames(t *testing.T, path string) []*dnstappb.Dnstap {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := framestream.NewReader(f, &framestream.ReaderOptions{ContentTypes: [][]byte{dnstappb.FSContentType}})
	if err != nil {
		t.Fatal(err)
	}
	var out []*dnstappb.Dnstap
	buf := make([]byte, 1<<16)
	for {
		n, err := r.ReadFrame(buf)
		if errors.Is(err, io.EOF) || errors.Is(err, framestream.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		d := new(dnstappb.Dnstap)
		if err := proto.Unmarshal(buf[:n], d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
}

func TestFileFrames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tap.fstrm")
	tp, err := New(valid(Config{File: path}), "node-1", "meridian test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	m := &Message{Query: []byte("query"), Response: []byte("reply")}
	m.Client = netip.MustParseAddrPort("[2001:db8::7]:5353")
	m.QueryTime, m.ResponseTime = time.Unix(100, 5), time.Unix(100, 900)
	m.Decided = true
	m.Decision = Decision{Record: "app.example.test.", Type: "A", Policy: "geo", Region: "eu-west", Outcome: "fallback", Scope: 24}
	tp.Put(m)
	m.Query, m.Response, m.Decided, m.TCP = []byte("q2"), nil, false, true // no response: the query alone
	tp.Put(m)
	tp.Close()
	frames := readFrames(t, path)
	if len(frames) != 3 {
		t.Fatalf("%d frames, want 3", len(frames))
	}
	q, r, q2 := frames[0], frames[1], frames[2]
	if q.GetMessage().GetType() != dnstappb.Message_AUTH_QUERY || r.GetMessage().GetType() != dnstappb.Message_AUTH_RESPONSE {
		t.Errorf("types %v %v", q.GetMessage().GetType(), r.GetMessage().GetType())
	}
	if string(q.GetIdentity()) != "node-1" || string(q.GetVersion()) != "meridian test" {
		t.Errorf("identity %q version %q", q.GetIdentity(), q.GetVersion())
	}
	want := "gslb record=app.example.test. type=A policy=geo region=eu-west outcome=fallback fallback=true scope=24"
	if string(r.GetExtra()) != want || q.GetExtra() != nil {
		t.Errorf("extra %q on the response, %q on the query; want %q on the response", r.GetExtra(), q.GetExtra(), want)
	}
	rm := r.GetMessage()
	if !bytes.Equal(rm.GetQueryAddress(), netip.MustParseAddr("2001:db8::7").AsSlice()) || rm.GetQueryPort() != 5353 ||
		rm.GetSocketFamily() != dnstappb.SocketFamily_INET6 || string(rm.GetResponseMessage()) != "reply" ||
		rm.GetResponseTimeNsec() != 900 || rm.GetQueryTimeNsec() != 5 {
		t.Errorf("response message %v", rm)
	}
	if q2.GetMessage().GetSocketProtocol() != dnstappb.SocketProtocol_TCP || string(q2.GetMessage().GetQueryMessage()) != "q2" {
		t.Errorf("second query %v", q2.GetMessage())
	}
	if tp.Sent() != 3 || tp.Dropped() != 0 {
		t.Errorf("sent %d dropped %d, want 3 and 0", tp.Sent(), tp.Dropped())
	}
}

// TestDeadCollector: with no collector, or one that never reads, Get and
// Send return at once and the frames are counted as dropped.
func TestDeadCollector(t *testing.T) {
	dir := t.TempDir()
	stalled := filepath.Join(dir, "stalled.sock")
	ln, err := net.Listen("unix", stalled)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		// Accepts, and never answers the handshake or reads a byte.
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	for _, tc := range []struct{ name, socket string }{
		{"no collector", filepath.Join(dir, "nobody.sock")},
		{"collector that never reads", stalled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := New(valid(Config{Socket: tc.socket, Buffer: 64}), "n", "v", quiet())
			if err != nil {
				t.Fatal(err)
			}
			defer tp.Close()
			const n = 20000
			start := time.Now()
			m := &Message{Query: make([]byte, 40), Response: make([]byte, 200)}
			for range n {
				tp.Put(m)
			}
			// Generous: 20,000 queries through a full channel take
			// milliseconds; blocking on the collector would take
			// DefaultTimeout per write.
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("%d queries took %v", n, el)
			}
			deadline := time.Now().Add(10 * time.Second)
			for tp.Dropped() < 2*n && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if tp.Dropped() != 2*n || tp.Sent() != 0 {
				t.Errorf("dropped %d sent %d of %d queries' frames", tp.Dropped(), tp.Sent(), 2*n)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	f := false
	tests := []struct {
		name string
		c    Config
		key  string
	}{
		{"two outputs", Config{Socket: "/a", File: "/b"}, "socket"},
		{"bad address", Config{Address: "localhost"}, "address"},
		{"sample above 1", Config{File: "/a", Sample: 1.5}, "sample"},
		{"nothing logged", Config{File: "/a", Queries: &f, Responses: &f}, "queries"},
		{"negative buffer", Config{File: "/a", Buffer: -1}, "buffer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid(tt.c)
			p := c.Validate()
			if len(p) != 1 || p[0].Key != tt.key {
				t.Errorf("problems %v, want one for %s", p, tt.key)
			}
		})
	}
	if c := valid(Config{Address: "127.0.0.1:6000"}); len(c.Validate()) != 0 {
		t.Errorf("a valid config has problems: %v", c.Validate())
	}
}

// BenchmarkEncode is the writer's work per query: a query frame and a
// response frame with a decision.
func BenchmarkEncode(b *testing.B) {
	tp := &Tap{cfg: valid(Config{File: "/dev/null"}), identity: []byte("node"), version: []byte("v")}
	m := &Message{Query: make([]byte, 60), Response: make([]byte, 120), Client: netip.MustParseAddrPort("192.0.2.1:5353"),
		QueryTime: time.Now(), ResponseTime: time.Now(), Decided: true,
		Decision: Decision{Record: "app.example.test.", Type: "A", Policy: "geo", Region: "eu-west", Outcome: "answered", Scope: 24}}
	enc := &encoder{}
	b.ReportAllocs()
	for b.Loop() {
		enc.encode(tp, m, false)
		enc.encode(tp, m, true)
	}
}

// BenchmarkWrite is the writer's whole work per query, into /dev/null.
func BenchmarkWrite(b *testing.B) {
	tp, err := New(valid(Config{File: os.DevNull, Buffer: 1 << 16}), "node", "v", quiet())
	if err != nil {
		b.Fatal(err)
	}
	defer tp.Close()
	m := &Message{Query: make([]byte, 60), Response: make([]byte, 120), Decided: true,
		Decision: Decision{Record: "app.example.test.", Type: "A", Policy: "geo", Region: "eu-west", Outcome: "answered", Scope: 24}}
	b.ReportAllocs()
	for b.Loop() {
		m.QueryTime = tp.Now()
		tp.Put(m)
	}
	for tp.Sent()+tp.Dropped() < uint64(2*b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(tp.Dropped())/float64(b.N)/2, "dropped/frame")
}
