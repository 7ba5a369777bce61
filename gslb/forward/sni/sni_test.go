package sni

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// clientHello returns the bytes crypto/tls sends to open a handshake with
// cfg: a real ClientHello, with whatever extensions Go sends today.
func clientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		defer client.Close()
		_ = tls.Client(client, cfg).Handshake() // fails once server closes: it is never answered
	}()
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, raw, err := Read(server, 0)
	if err != nil {
		t.Fatalf("reading crypto/tls's ClientHello: %v", err)
	}
	return raw
}

func TestReadRealClientHello(t *testing.T) {
	tests := []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"name lower-cased", &tls.Config{ServerName: "Api.Example.TEST"}, "api.example.test"},
		{"TLS 1.2 only", &tls.Config{ServerName: "old.example.test", MaxVersion: tls.VersionTLS12}, "old.example.test"},
		// crypto/tls sends no SNI for an IP address (RFC 6066 forbids it).
		{"no SNI for an IP", &tls.Config{ServerName: "192.0.2.1", InsecureSkipVerify: true}, ""},
		{"long name", &tls.Config{ServerName: "a-rather-long-label-for-a-host.with.many.labels.example.test"},
			"a-rather-long-label-for-a-host.with.many.labels.example.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := clientHello(t, tt.cfg)
			// The bytes after the ClientHello stay unread: they belong
			// to the backend.
			in := bytes.NewReader(append(append([]byte{}, raw...), "after"...))
			name, got, err := Read(in, 0)
			if err != nil {
				t.Fatal(err)
			}
			if name != tt.want {
				t.Errorf("name = %q, want %q", name, tt.want)
			}
			if !bytes.Equal(got, raw) {
				t.Errorf("returned %d bytes, want the %d of the ClientHello", len(got), len(raw))
			}
			if rest, _ := io.ReadAll(in); string(rest) != "after" {
				t.Errorf("left %q unread, want %q", rest, "after")
			}
		})
	}
}

// A ClientHello split over several records (allowed, and what a large one
// needs) is put back together.
func TestReadFragmented(t *testing.T) {
	raw := clientHello(t, &tls.Config{ServerName: "split.example.test"})
	msg := raw[recordHeaderLen:]
	var frag []byte
	for len(msg) > 0 {
		n := min(len(msg), 7)
		frag = append(frag, contentHandshake, 3, 1, 0, byte(n))
		frag = append(frag, msg[:n]...)
		msg = msg[n:]
	}
	name, got, err := Read(bytes.NewReader(frag), 0)
	if err != nil || name != "split.example.test" {
		t.Fatalf("Read = %q, %v; want split.example.test", name, err)
	}
	if !bytes.Equal(got, frag) {
		t.Errorf("returned %d bytes, want all %d read", len(got), len(frag))
	}
}

func TestReadErrors(t *testing.T) {
	hello := clientHello(t, &tls.Config{ServerName: "x.example.test"})
	withBody := func(body []byte) []byte {
		msg := append([]byte{typeClientHello, 0, byte(len(body) >> 8), byte(len(body))}, body...)
		return append([]byte{contentHandshake, 3, 1, byte(len(msg) >> 8), byte(len(msg))}, msg...)
	}
	tests := []struct {
		name string
		in   []byte
		max  int
		want error
	}{
		{"plain HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0, ErrNotTLS},
		{"alert record", []byte{21, 3, 3, 0, 2, 2, 40}, 0, ErrNotTLS},
		{"ServerHello, not ClientHello", []byte{contentHandshake, 3, 3, 0, 4, 2, 0, 0, 0}, 0, ErrNotTLS},
		{"empty record", []byte{contentHandshake, 3, 1, 0, 0}, 0, ErrMalformed},
		{"record too long", []byte{contentHandshake, 3, 1, 0xff, 0xff}, 0, ErrMalformed},
		{"over the size limit", hello, 64, ErrTooLarge},
		{"truncated body", withBody(make([]byte, 20)), 0, ErrMalformed},
		{"session id too long", withBody(append(make([]byte, 34), 33)), 0, ErrMalformed},
		{"eof in the record", hello[:len(hello)-3], 0, io.ErrUnexpectedEOF},
		{"eof at once", nil, 0, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Read(bytes.NewReader(tt.in), tt.max)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzRead feeds arbitrary bytes: Read must never panic, nor
// return anything but exactly the bytes it consumed.
func FuzzRead(f *testing.F) {
	f.Add(clientHello(f, &tls.Config{ServerName: "fuzz.example.test"}))
	f.Add(clientHello(f, &tls.Config{ServerName: "tls12.example.test", MaxVersion: tls.VersionTLS12}))
	f.Add([]byte{contentHandshake, 3, 1, 0, 4, typeClientHello, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		_, raw, _ := Read(r, 4096)
		if consumed := len(in) - r.Len(); !bytes.Equal(raw, in[:consumed]) {
			t.Fatalf("returned %d bytes that are not the %d consumed", len(raw), consumed)
		}
	})
}

func BenchmarkRead(b *testing.B) {
	raw := clientHello(b, &tls.Config{ServerName: "bench.example.test"})
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, _, err := Read(bytes.NewReader(raw), 0); err != nil {
			b.Fatal(err)
		}
	}
}
