package forward

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// TLS termination: each server name gets its certificate (exact, then
// wildcard, then the first as the default), HTTP/2 is offered, TLS 1.1 is
// refused, and a certificate replaced on disk is served from the next
// handshake on; a broken replacement leaves the old one in place.
func TestTLSTermination(t *testing.T) {
	t.Parallel()
	ca := testkit.NewCA(t)
	b := startHTTPBackend(t, "b")
	serials := map[string]int64{}
	h := startForwarderWith(t, func(dir string) {
		serials["default"] = ca.Server(t, "default.test").WriteFiles(t, filepath.Join(dir, "default.pem"), filepath.Join(dir, "default.key")).Serial()
		serials["api"] = ca.Server(t, "api.example.test").WriteFiles(t, filepath.Join(dir, "api.pem"), filepath.Join(dir, "api.key")).Serial()
		serials["wild"] = ca.Server(t, "*.example.test", "example.test").WriteFiles(t, filepath.Join(dir, "wild.pem"), filepath.Join(dir, "wild.key")).Serial()
	}, httpPool("b", "", b)+listenerTOML("tls", "https", "b", `certificate_reload = "20ms"
[listener.response_headers]
Strict-Transport-Security = "max-age=63072000; includeSubDomains"
[[listener.certificate]]
cert_file = "default.pem"
key_file = "default.key"
[[listener.certificate]]
cert_file = "api.pem"
key_file = "api.key"
[[listener.certificate]]
cert_file = "wild.pem"
key_file = "wild.key"`))
	addr := h.addr("tls")

	tests := []struct{ serverName, want string }{
		{"api.example.test", "api"},
		{"API.example.test", "api"},
		{"www.example.test", "wild"},
		{"example.test", "wild"},
		{"a.b.example.test", "default"}, // a wildcard is one label; the client then rejects it
		{"", "default"},
	}
	for _, tt := range tests {
		t.Run("sni="+tt.serverName, func(t *testing.T) {
			cfg := &tls.Config{ServerName: tt.serverName, RootCAs: ca.Pool, InsecureSkipVerify: tt.want == "default"}
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != serials[tt.want] {
				t.Errorf("served serial %d, want %s's %d", got, tt.want, serials[tt.want])
			}
		})
	}

	// HTTP/2 is offered.
	if _, proto := served(t, addr, "api.example.test", ca.Pool); proto != "h2" {
		t.Errorf("ALPN = %q, want h2", proto)
	}

	// TLS 1.1 is refused.
	if c, err := tls.DialWithDialer(&net.Dialer{Timeout: ioTimeout}, "tcp", addr,
		&tls.Config{ServerName: "api.example.test", RootCAs: ca.Pool, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}

	// A renewed certificate is served without a reload of the
	// configuration.
	dir := h.dir()
	renewed := ca.Server(t, "api.example.test").WriteFiles(t, filepath.Join(dir, "api.pem"), filepath.Join(dir, "api.key")).Serial()
	testkit.Eventually(t, "the renewed certificate served", func() bool {
		got, _ := served(t, addr, "api.example.test", ca.Pool)
		return got == renewed
	})
	if got := h.metric(`meridian_forward_tls_certificate_reloads_total{listener="tls",result="success"}`); got < 1 {
		t.Errorf("reloads = %v", got)
	}
	// A broken file is logged and counted; the certificate in force stays.
	if err := os.WriteFile(filepath.Join(dir, "api.pem"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the failed reload counted", func() bool {
		return h.metric(`meridian_forward_tls_certificate_reloads_total{listener="tls",result="failure"}`) >= 1
	})
	if got, _ := served(t, addr, "api.example.test", ca.Pool); got != renewed {
		t.Errorf("after a broken file the serial is %d, want %d still", got, renewed)
	}
	if !strings.Contains(h.log.String(), "certificate reload failed") {
		t.Error("the failed reload is not logged")
	}
}

// tlsClient is an HTTPS client that trusts ca and connects to addr
// whatever the URL's host, offering HTTP/2 when h2.
func tlsClient(ca *testkit.CA, addr string, h2 bool) *http.Client {
	return &http.Client{Timeout: ioTimeout, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.Pool},
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}
