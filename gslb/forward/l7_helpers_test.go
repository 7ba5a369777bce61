package forward

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seen is a request as an HTTP backend received it; the backend answers
// with it as JSON, so a test sees what went through the proxy.
type seen struct {
	Backend string      `json:"backend"`
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	RawPath string      `json:"raw_path"`
	Query   string      `json:"query"`
	Host    string      `json:"host"`
	Proto   string      `json:"proto"`
	Header  http.Header `json:"header"`
	Body    string      `json:"body"`
}

// httpBackend is a real HTTP server on loopback that answers every
// request with what it saw, with a status and delay a test can change.
// An Upgrade: websocket request is switched and echoed byte for byte.
type httpBackend struct {
	name   string
	addr   string
	srv    *httptest.Server
	hits   atomic.Int64
	status atomic.Int64 // 0: 200
	delay  atomic.Int64 // ns before answering
	mu     sync.Mutex
	bodies []string
}

func startHTTPBackend(t *testing.T, name string) *httpBackend {
	t.Helper()
	b := &httpBackend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	b.addr = b.srv.Listener.Addr().String()
	t.Cleanup(b.srv.Close)
	return b
}

// startTLSBackend is startHTTPBackend over TLS, with httptest's
// certificate (for example.com and 127.0.0.1); ca is its PEM.
func startTLSBackend(t *testing.T, name string) (b *httpBackend, ca []byte) {
	t.Helper()
	b = &httpBackend{name: name}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes a test means to fail
	b.srv.StartTLS()
	b.addr = b.srv.Listener.Addr().String()
	t.Cleanup(b.srv.Close)
	return b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.srv.Certificate().Raw})
}

func (b *httpBackend) serve(w http.ResponseWriter, r *http.Request) {
	b.hits.Add(1)
	if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		b.echoUpgrade(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.bodies = append(b.bodies, string(body))
	b.mu.Unlock()
	if d := b.delay.Load(); d > 0 {
		select {
		case <-time.After(time.Duration(d)):
		case <-r.Context().Done():
			return
		}
	}
	code := int(b.status.Load())
	if code == 0 {
		code = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Backend", b.name)
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(seen{
		Backend: b.name, Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Query: r.URL.RawQuery,
		Host: r.Host, Proto: r.Proto, Header: r.Header, Body: string(body),
	})
}

// echoUpgrade switches protocols and echoes, as a WebSocket server's
// handshake would, without a WebSocket library: the proxy only has to
// carry bytes both ways.
func (b *httpBackend) echoUpgrade(w http.ResponseWriter, _ *http.Request) {
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Backend: " + b.name + "\r\n\r\n")
	brw.Flush()
	buf := make([]byte, 4096)
	for {
		n, err := brw.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// httpClient is a client of the forwarder's http listeners: bounded, and
// never following redirects, which the tests look at.
func httpClient() *http.Client {
	return &http.Client{
		Timeout:       ioTimeout,
		Transport:     &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// reply is an answer through the proxy, with what the backend saw when
// one answered.
type reply struct {
	code   int
	header http.Header
	body   string
	seen   seen // zero unless a backend answered
}

// send sends a request through the proxy; host sets the Host header
// when not "".
func send(t *testing.T, c *http.Client, method, url, host, body string, header map[string]string) reply {
	t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rb)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{code: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.Header.Get("X-Backend") != "" && resp.Header.Get("Content-Type") == "application/json" {
		json.Unmarshal(b, &r.seen)
	}
	return r
}

// served returns the serial of the certificate the listener at addr
// serves for serverName, and the protocol negotiated.
func served(t *testing.T, addr, serverName string, roots *x509.CertPool) (int64, string) {
	t.Helper()
	d := &net.Dialer{Timeout: ioTimeout}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: serverName, RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("TLS to %s as %q: %v", addr, serverName, err)
	}
	defer c.Close()
	st := c.ConnectionState()
	return st.PeerCertificates[0].SerialNumber.Int64(), st.NegotiatedProtocol
}

// rawHTTP is a hand-driven HTTP/1.1 connection, for upgrades and for
// what clients should not be able to send.
type rawHTTP struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawHTTP {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitFor))
	return &rawHTTP{Conn: c, r: bufio.NewReader(c)}
}

// upgrade sends a WebSocket handshake and returns the response.
func (c *rawHTTP) upgrade(t *testing.T, host, path string) *http.Response {
	t.Helper()
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	return resp
}

// echo sends msg through an upgraded connection and checks it comes back.
func (c *rawHTTP) echo(t *testing.T, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write through the tunnel: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c.r, got); err != nil {
		t.Fatalf("echo of %q through the tunnel: %v", msg, err)
	}
	if string(got) != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

// dir is the harness's folder, where relative paths in the configuration
// point.
func (h *harness) dir() string { return filepath.Dir(h.path) }

// url is http://addr of listener name.
func (h *harness) url(name string) string { return "http://" + h.addr(name) }

// httpPool writes a [[pool]] of HTTP backends without active checks;
// extra is the pool's keys, then its tables.
func httpPool(name, extra string, bs ...*httpBackend) string {
	addrs := make([]string, len(bs))
	for i, b := range bs {
		addrs[i] = b.addr
	}
	return uncheckedPool(name, extra, addrs...)
}

// uncheckedPool writes a [[pool]] of addrs without active checks: the
// backends count as healthy unless passive health says otherwise. extra
// is the pool's keys, then its tables.
func uncheckedPool(name, extra string, addrs ...string) string {
	return pool(name, extra+"\n[pool.check]\ntype = \"none\"\n", addrs...)
}
