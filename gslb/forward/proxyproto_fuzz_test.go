package forward

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/pires/go-proxyproto"
)

// FuzzProxyHeader feeds PROXY protocol headers (v1 text and v2 binary) to
// the reader a listener with accept_proxy runs on every connection before
// anything else: whatever a client sends must be refused or read, never
// crash, and what is read must give addresses or none.
func FuzzProxyHeader(f *testing.F) {
	for _, seed := range [][]byte{
		[]byte("PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n"),
		[]byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"),
		[]byte("PROXY UNKNOWN\r\n"),
		append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0x00, 0x0c, 192, 0, 2, 1, 198, 51, 100, 1, 0xdc, 0x04, 0x01, 0xbb),
		append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, 0xff, 0xff),
		[]byte("PROXY TCP4 999.0.2.1 198.51.100.1 1 2\r\n"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		if h.Command.IsProxy() {
			h.TCPAddrs()
		}
	})
}
