package probes

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// quiet drops the TLS servers' logs of the handshakes the tests fail on
// purpose.
var quiet = log.New(io.Discard, "", 0)

func mustHTTP(t *testing.T, cfg HTTPConfig) *HTTPChecker {
	t.Helper()
	c, err := NewHTTPChecker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hostOf is the host:port of an httptest server.
func hostOf(srv *httptest.Server) string { return srv.Listener.Addr().String() }

func TestHTTPChecker(t *testing.T) {
	var redirected atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "all good: version 1.2.3")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
	})
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "www.example.test" || r.UserAgent() != UserAgent {
			http.Error(w, "Host "+r.Host+" User-Agent "+r.UserAgent(), http.StatusMisdirectedRequest)
		}
	})
	mux.HandleFunc("/head", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 100<<10) + "NEEDLE"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	addr := hostOf(srv)

	tests := []struct {
		name       string
		cfg        HTTPConfig
		wantOK     bool
		wantReason string
	}{
		{"status 200", HTTPConfig{Path: "/ok"}, true, "status 200"},
		{"status 503", HTTPConfig{Path: "/fail"}, false, "status 503"},
		{"status 404", HTTPConfig{Path: "/nothing"}, false, "status 404"},
		{"status in the list", HTTPConfig{Path: "/fail", Status: []int{200, 503}}, true, "status 503"},
		{"status not in the list", HTTPConfig{Path: "/ok", Status: []int{204}}, false, "status 200"},
		{"redirect counts as 3xx", HTTPConfig{Path: "/redirect"}, true, "status 302"},
		{"redirect not accepted", HTTPConfig{Path: "/redirect", Status: []int{200}}, false, "status 302"},
		{"body contains", HTTPConfig{Path: "/ok", BodyContains: "all good"}, true, "status 200"},
		{"body lacks", HTTPConfig{Path: "/ok", BodyContains: "all bad"}, false, "body does not match"},
		{"body regexp", HTTPConfig{Path: "/ok", BodyRegexp: `version \d+\.\d+`}, true, "status 200"},
		{"body regexp fails", HTTPConfig{Path: "/ok", BodyRegexp: `^version`}, false, "body does not match"},
		{"both must match", HTTPConfig{Path: "/ok", BodyContains: "good", BodyRegexp: `^nope`}, false, "body does not match"},
		{"body beyond the limit", HTTPConfig{Path: "/big", BodyContains: "NEEDLE"}, false, "body does not match"},
		{"body within a larger limit", HTTPConfig{Path: "/big", BodyContains: "NEEDLE", MaxBody: 200 << 10}, true, "status 200"},
		{"Host header sent", HTTPConfig{Path: "/host", Host: "www.example.test"}, true, "status 200"},
		{"Host header defaults to the address", HTTPConfig{Path: "/host"}, false, "status 421"},
		{"method", HTTPConfig{Path: "/head", Method: http.MethodHead}, true, "status 200"},
		{"method defaults to GET", HTTPConfig{Path: "/head"}, false, "status 405"},
		{"refused", HTTPConfig{Addr: closedPort(t), Path: "/ok"}, false, "connect: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.Addr == "" {
				tt.cfg.Addr = addr
			}
			r := check(mustHTTP(t, tt.cfg), 2*time.Second)
			if r.OK != tt.wantOK || r.Reason != tt.wantReason {
				t.Fatalf("got OK=%v reason %q, want OK=%v reason %q", r.OK, r.Reason, tt.wantOK, tt.wantReason)
			}
			if r.RTT <= 0 {
				t.Errorf("RTT %v, want > 0", r.RTT)
			}
		})
	}
	if n := redirected.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

func TestHTTPCheckerTimeout(t *testing.T) {
	hung := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-body" {
			w.Write([]byte("start of the body"))
			w.(http.Flusher).Flush()
		}
		hung <- struct{}{}
		<-r.Context().Done() // hang until the client gives up
	}))
	defer srv.Close()

	for _, tt := range []struct{ path, contains, want string }{
		{"/", "", "awaiting response headers: timeout"},
		{"/slow-body", "end", "body: read: timeout"},
	} {
		c := mustHTTP(t, HTTPConfig{Addr: hostOf(srv), Path: tt.path, BodyContains: tt.contains})
		start := time.Now()
		r := check(c, 100*time.Millisecond)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s: the check took %v with a 100ms deadline", tt.path, took)
		}
		if r.OK || r.Reason != tt.want {
			t.Errorf("%s: got OK=%v reason %q, want %q", tt.path, r.OK, r.Reason, tt.want)
		}
		select {
		case <-hung:
		default:
			t.Errorf("%s: the request never reached the server", tt.path)
		}
	}
}

// Each check opens its own connection, so that it measures connecting too.
func TestHTTPCheckerFreshConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := mustHTTP(t, HTTPConfig{Addr: hostOf(srv)})
	for range 3 {
		if r := check(c, 2*time.Second); !r.OK {
			t.Fatal(r.Reason)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("3 checks used %d connections", n)
	}
}

// pki is a throwaway CA and a client certificate it signed, as PEM files
// and as their contents.
type pki struct {
	caPool            *x509.CertPool
	certFile, keyFile string
	certPEM, keyPEM   []byte
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	ca := testkit.NewCA(t)
	client := ca.Client(t, "probe")
	p := pki{caPool: ca.Pool, certFile: filepath.Join(dir, "client.pem"), keyFile: filepath.Join(dir, "client.key")}
	client.WriteFiles(t, p.certFile, p.keyFile)
	p.certPEM, p.keyPEM = client.CertPEM(), client.KeyPEM(t)
	return p
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHTTPSChecker(t *testing.T) {
	var sni atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sni.Store(r.TLS.ServerName)
	}))
	srv.Config.ErrorLog = quiet
	srv.StartTLS()
	defer srv.Close()
	// httptest's certificate is valid for example.com, 127.0.0.1 and ::1.
	caFile := writePEM(t, t.TempDir(), "ca.pem", "CERTIFICATE", srv.Certificate().Raw)
	caPEM := readFile(t, caFile)

	p := newPKI(t)
	mtls := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "probe" {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	mtls.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.caPool}
	mtls.Config.ErrorLog = quiet
	mtls.StartTLS()
	defer mtls.Close()
	mtlsCA := writePEM(t, t.TempDir(), "ca.pem", "CERTIFICATE", mtls.Certificate().Raw)
	mtlsCAPEM := readFile(t, mtlsCA)
	otherCAPEM := testkit.NewCA(t).CertPEM()

	tests := []struct {
		name       string
		srv        *httptest.Server
		cfg        HTTPConfig
		wantOK     bool
		wantReason string // a substring
		wantSNI    string
	}{
		{"unknown CA by default", srv, HTTPConfig{Host: "example.com"}, false, "certificate signed by unknown authority", ""},
		{"CA file", srv, HTTPConfig{Host: "example.com", CAFile: caFile}, true, "status 200", "example.com"},
		{"CA PEM", srv, HTTPConfig{Host: "example.com", CAPEM: caPEM}, true, "status 200", "example.com"},
		{"name not in the certificate, CA PEM", srv, HTTPConfig{Host: "www.example.test", CAPEM: caPEM}, false, "not www.example.test", ""},
		{"CA PEM of another CA", srv, HTTPConfig{Host: "example.com", CAPEM: otherCAPEM}, false, "certificate signed by unknown authority", ""},
		{"SNI from the Host header, port dropped", srv, HTTPConfig{Host: "example.com:443", CAFile: caFile}, true, "status 200", "example.com"},
		{"name not in the certificate", srv, HTTPConfig{Host: "www.example.test", CAFile: caFile}, false, "not www.example.test", ""},
		{"server name overrides the Host header", srv, HTTPConfig{Host: "www.example.test", ServerName: "example.com", CAFile: caFile}, true, "status 200", "example.com"},
		{"IP address from Addr", srv, HTTPConfig{CAFile: caFile}, true, "status 200", ""},
		{"verification off", srv, HTTPConfig{Host: "www.example.test", SkipVerify: true}, true, "status 200", "www.example.test"},
		{"client certificate missing", mtls, HTTPConfig{Host: "example.com", CAFile: mtlsCA}, false, "certificate required", ""},
		{"client certificate supplied", mtls, HTTPConfig{Host: "example.com", CAFile: mtlsCA, CertFile: p.certFile, KeyFile: p.keyFile}, true, "status 200", ""},
		{"client certificate missing, CA PEM", mtls, HTTPConfig{Host: "example.com", CAPEM: mtlsCAPEM}, false, "certificate required", ""},
		{"client certificate as PEM", mtls, HTTPConfig{Host: "example.com", CAPEM: mtlsCAPEM, CertPEM: p.certPEM, KeyPEM: p.keyPEM}, true, "status 200", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sni.Store("")
			tt.cfg.Addr, tt.cfg.TLS = hostOf(tt.srv), true
			r := check(mustHTTP(t, tt.cfg), 2*time.Second)
			t.Logf("reason %q", r.Reason)
			if r.OK != tt.wantOK || !strings.Contains(r.Reason, tt.wantReason) {
				t.Fatalf("got OK=%v reason %q, want OK=%v reason with %q", r.OK, r.Reason, tt.wantOK, tt.wantReason)
			}
			if tt.wantSNI != "" && sni.Load() != tt.wantSNI {
				t.Errorf("server saw SNI %q, want %q", sni.Load(), tt.wantSNI)
			}
		})
	}
}

func TestNewHTTPCheckerInvalid(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newPKI(t)
	ca := testkit.NewCA(t).Cert
	caFile := writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	caPEM := readFile(t, caFile)
	tests := []struct {
		name string
		cfg  HTTPConfig
	}{
		{"no port", HTTPConfig{Addr: "127.0.0.1"}},
		{"relative path", HTTPConfig{Addr: "127.0.0.1:80", Path: "health"}},
		{"bad method", HTTPConfig{Addr: "127.0.0.1:80", Method: "GE T"}},
		{"bad status", HTTPConfig{Addr: "127.0.0.1:80", Status: []int{2000}}},
		{"negative body limit", HTTPConfig{Addr: "127.0.0.1:80", MaxBody: -1}},
		{"bad regexp", HTTPConfig{Addr: "127.0.0.1:80", BodyRegexp: "("}},
		{"TLS settings without TLS", HTTPConfig{Addr: "127.0.0.1:80", CAFile: notPEM}},
		{"missing CA file", HTTPConfig{Addr: "127.0.0.1:443", TLS: true, CAFile: filepath.Join(dir, "none.pem")}},
		{"CA file without a certificate", HTTPConfig{Addr: "127.0.0.1:443", TLS: true, CAFile: notPEM}},
		{"certificate without key", HTTPConfig{Addr: "127.0.0.1:443", TLS: true, CertFile: p.certFile}},
		{"key that does not fit", HTTPConfig{Addr: "127.0.0.1:443", TLS: true, CertFile: p.certFile, KeyFile: notPEM}},
		{"PEM without TLS", HTTPConfig{Addr: "127.0.0.1:80", CAPEM: p.certPEM}},
		{"CA file and PEM", HTTPConfig{Addr: "127.0.0.1:443", TLS: true, CAFile: caFile, CAPEM: caPEM}},
		{"CA PEM without a certificate", HTTPConfig{Addr: "127.0.0.1:443", TLS: true, CAPEM: []byte("hello")}},
		{"certificate file and PEM", HTTPConfig{Addr: "127.0.0.1:443", TLS: true, CertFile: p.certFile, CertPEM: p.certPEM, KeyPEM: p.keyPEM}},
		{"key file and PEM", HTTPConfig{Addr: "127.0.0.1:443", TLS: true, CertPEM: p.certPEM, KeyFile: p.keyFile, KeyPEM: p.keyPEM}},
		{"certificate PEM without key", HTTPConfig{Addr: "127.0.0.1:443", TLS: true, CertPEM: p.certPEM}},
		{"key PEM that does not fit", HTTPConfig{Addr: "127.0.0.1:443", TLS: true, CertPEM: p.certPEM, KeyPEM: p.certPEM}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHTTPChecker(tt.cfg)
			if !errors.Is(err, ErrInvalidCheck) {
				t.Fatalf("got %v, want ErrInvalidCheck", err)
			}
			if !strings.Contains(err.Error(), tt.cfg.Addr) {
				t.Errorf("error %q does not name the address", err)
			}
		})
	}
}

func TestHTTPCheckerEqual(t *testing.T) {
	dir := t.TempDir()
	ca := testkit.NewCA(t).Cert
	caFile := writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	base := HTTPConfig{Addr: "127.0.0.1:443", TLS: true, Path: "/health", CAFile: caFile, Status: []int{200}}
	a := mustHTTP(t, base)

	same := base
	same.Status = []int{200} // another slice, same codes
	if !a.Equal(mustHTTP(t, same)) {
		t.Error("same definition: not equal")
	}
	if d := mustHTTP(t, HTTPConfig{Addr: "127.0.0.1:80"}); !d.Equal(mustHTTP(t, HTTPConfig{Addr: "127.0.0.1:80", Method: "GET", Path: "/", Status: []int{}})) {
		t.Error("defaults spelled out: not equal")
	}
	other := base
	other.Path = "/other"
	if a.Equal(mustHTTP(t, other)) {
		t.Error("other path: equal")
	}
	// The same CA file path with new contents is a changed check.
	ca2 := testkit.NewCA(t).Cert
	writePEM(t, dir, "ca.pem", "CERTIFICATE", ca2.Raw)
	if a.Equal(mustHTTP(t, base)) {
		t.Error("rotated CA file: equal")
	}
}

// PEM contents count as file contents do: the same bytes are the same
// check, new bytes a changed one, whatever slices carry them.
func TestHTTPCheckerEqualPEM(t *testing.T) {
	ca := testkit.NewCA(t).Cert
	ca2 := testkit.NewCA(t).Cert
	p := newPKI(t)
	pemOf := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	caPEM := pemOf(ca)
	base := HTTPConfig{Addr: "127.0.0.1:443", TLS: true, CAPEM: caPEM, CertPEM: p.certPEM, KeyPEM: p.keyPEM}
	a := mustHTTP(t, base)

	same := base
	same.CAPEM = slices.Clone(caPEM)
	if !a.Equal(mustHTTP(t, same)) {
		t.Error("same PEM in another slice: not equal")
	}
	other := base
	other.CAPEM = pemOf(ca2)
	if a.Equal(mustHTTP(t, other)) {
		t.Error("another CA PEM: equal")
	}
	noCert := base
	noCert.CertPEM, noCert.KeyPEM = nil, nil
	if a.Equal(mustHTTP(t, noCert)) {
		t.Error("without the client certificate: equal")
	}
	// The checker keeps its own copy: the caller's buffer may be reused.
	copy(caPEM, pemOf(ca2))
	if !a.Equal(mustHTTP(t, same)) {
		t.Error("the caller's PEM changed after the checker was made: not equal")
	}
}
