package probes

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// HTTP check defaults.
const (
	DefaultMethod  = http.MethodGet
	DefaultPath    = "/"
	DefaultMaxBody = 64 << 10 // bytes of the body read to match it
	// UserAgent identifies checks in the target's access logs.
	UserAgent = "meridian-probe"
)

// HTTPConfig defines an HTTP or HTTPS check.
type HTTPConfig struct {
	Addr   string     // host:port to connect to
	TLS    bool       // HTTPS
	Source netip.Addr // local address to connect from; zero lets the system choose

	Method string // DefaultMethod when empty
	Path   string // path and query; DefaultPath when empty
	Host   string // Host header; the host of Addr when empty
	// Status lists the accepted status codes; empty accepts 200-399.
	// Redirects are never followed, so a 3xx is judged as it is.
	Status       []int
	BodyContains string // the body must contain this, when set
	BodyRegexp   string // the body must match this (RE2 syntax), when set
	MaxBody      int64  // bytes of the body read for matching; DefaultMaxBody when 0

	// ServerName is the name sent as SNI and verified in the server's
	// certificate; the host of Host (else of Addr) when empty.
	ServerName string
	CAFile     string // PEM roots that replace the system's, when set
	CertFile   string // PEM client certificate, with KeyFile
	KeyFile    string
	SkipVerify bool // accept any server certificate

	// CAPEM, CertPEM and KeyPEM are the contents of CAFile, CertFile and
	// KeyFile, for a check defined on one host and run on another (a
	// probe agent), where the paths mean nothing. Each excludes its file.
	CAPEM   []byte
	CertPEM []byte
	KeyPEM  []byte
}

// HTTPChecker sends one request on a fresh connection and judges the
// response by its status and, if configured, its body. Make one with
// NewHTTPChecker; it is safe for concurrent use.
type HTTPChecker struct {
	cfg HTTPConfig // defaults applied, as compared by Equal; the PEM fields moved to files
	// The CA, certificate and key contents, read from the files or given
	// as PEM: a rotated file or new PEM is a changed check.
	files  [3][]byte
	url    string
	host   string
	body   *regexp.Regexp
	client *http.Client
}

var (
	_ Checker = (*HTTPChecker)(nil)
	_ Equaler = (*HTTPChecker)(nil)
)

// NewHTTPChecker validates cfg, reads its CA and client certificate files
// (unless given as PEM) and returns its checker.
func NewHTTPChecker(cfg HTTPConfig) (*HTTPChecker, error) {
	c, err := newHTTPChecker(cfg)
	if err != nil {
		scheme := "http"
		if cfg.TLS {
			scheme = "https"
		}
		return nil, fmt.Errorf("%s check %q: %w", scheme, cfg.Addr, err)
	}
	return c, nil
}

func newHTTPChecker(cfg HTTPConfig) (*HTTPChecker, error) {
	if err := checkAddr(cfg.Addr); err != nil {
		return nil, err
	}
	if cfg.Method == "" {
		cfg.Method = DefaultMethod
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if !strings.HasPrefix(cfg.Path, "/") {
		return nil, fmt.Errorf("%w: path %q must start with /", ErrInvalidCheck, cfg.Path)
	}
	if len(cfg.Status) == 0 {
		cfg.Status = nil // so that Equal sees nil and empty alike
	}
	for _, code := range cfg.Status {
		if code < 100 || code > 599 {
			return nil, fmt.Errorf("%w: status %d is not an HTTP status code", ErrInvalidCheck, code)
		}
	}
	cfg.Status = slices.Clone(cfg.Status) // the caller's slice may change later
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxBody < 0 {
		return nil, fmt.Errorf("%w: negative body limit %d", ErrInvalidCheck, cfg.MaxBody)
	}
	c := &HTTPChecker{cfg: cfg, host: cfg.Host}
	if cfg.BodyRegexp != "" {
		re, err := regexp.Compile(cfg.BodyRegexp)
		if err != nil {
			return nil, fmt.Errorf("%w: body regexp: %w", ErrInvalidCheck, err)
		}
		c.body = re
	}

	scheme := "http"
	var tlsCfg *tls.Config
	if cfg.TLS {
		scheme = "https"
		var err error
		if tlsCfg, err = c.tlsConfig(); err != nil {
			return nil, err
		}
	} else if cfg.ServerName != "" || cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.SkipVerify ||
		len(cfg.CAPEM) > 0 || len(cfg.CertPEM) > 0 || len(cfg.KeyPEM) > 0 {
		return nil, fmt.Errorf("%w: TLS settings on a plain HTTP check", ErrInvalidCheck)
	}
	c.cfg.CAPEM, c.cfg.CertPEM, c.cfg.KeyPEM = nil, nil, nil
	c.url = scheme + "://" + cfg.Addr + cfg.Path
	// Catch a bad method or path now rather than at every check.
	if _, err := http.NewRequest(cfg.Method, c.url, nil); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCheck, err)
	}

	dialer := &net.Dialer{LocalAddr: localAddr(cfg.Source)}
	c.client = &http.Client{
		Transport: &http.Transport{
			// No Proxy: a check measures the target, never a proxy
			// from the environment.
			DialContext:     dialer.DialContext,
			TLSClientConfig: tlsCfg,
			// Each check measures a fresh connection: a reused one
			// would hide a target that no longer accepts connections.
			DisableKeepAlives:      true,
			DisableCompression:     true,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			// The check is of this target; a redirect's target may be
			// anywhere.
			return http.ErrUseLastResponse
		},
	}
	return c, nil
}

func (c *HTTPChecker) tlsConfig() (*tls.Config, error) {
	cfg := c.cfg
	name := cfg.ServerName
	if name == "" {
		name = cfg.Host
		if name == "" {
			name = cfg.Addr
		}
		name = hostOnly(name)
	}
	tc := &tls.Config{ServerName: name, InsecureSkipVerify: cfg.SkipVerify}
	ca, err := pemOf("CA", cfg.CAFile, cfg.CAPEM)
	if err != nil {
		return nil, err
	}
	if ca != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("%w: CA %s: no PEM certificate", ErrInvalidCheck, cmp.Or(cfg.CAFile, "PEM"))
		}
		tc.RootCAs = pool
	}
	certPEM, err := pemOf("certificate", cfg.CertFile, cfg.CertPEM)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pemOf("key", cfg.KeyFile, cfg.KeyPEM)
	if err != nil {
		return nil, err
	}
	if (certPEM == nil) != (keyPEM == nil) {
		return nil, fmt.Errorf("%w: a client certificate needs both a certificate and a key", ErrInvalidCheck)
	}
	if certPEM != nil {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate %s: %w", ErrInvalidCheck, cmp.Or(cfg.CertFile, "PEM"), err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	c.files = [3][]byte{ca, certPEM, keyPEM}
	return tc, nil
}

// pemOf returns the PEM contents of a file or given outright, or nil when
// neither is set.
func pemOf(what, file string, pem []byte) ([]byte, error) {
	switch {
	case file != "" && len(pem) > 0:
		return nil, fmt.Errorf("%w: %s file %s and %s PEM both set", ErrInvalidCheck, what, file, what)
	case len(pem) > 0:
		return slices.Clone(pem), nil // the caller's slice may change later
	case file == "":
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %s file: %w", ErrInvalidCheck, what, err)
	}
	return b, nil
}

// hostOnly strips the port, if any, from a host or host:port.
func hostOnly(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return strings.Trim(hostport, "[]")
}

// Connection phases, to say which one a timeout cut short.
const (
	phaseConnect int32 = iota
	phaseTLS
	phaseResponse
)

var phaseNames = [...]string{"connect", "tls handshake", "awaiting response headers"}

// Check sends one request.
func (c *HTTPChecker) Check(ctx context.Context) Result {
	var phase atomic.Int32 // the trace hooks run on the transport's goroutines
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		TLSHandshakeStart: func() { phase.Store(phaseTLS) },
		GotConn:           func(httptrace.GotConnInfo) { phase.Store(phaseResponse) },
	})
	req, err := http.NewRequestWithContext(ctx, c.cfg.Method, c.url, nil)
	if err != nil { // validated by NewHTTPChecker; kept for safety
		return Result{Reason: describe(err)}
	}
	if c.host != "" {
		req.Host = c.host
	}
	req.Header.Set("User-Agent", UserAgent)

	start := time.Now()
	resp, err := c.client.Do(req)
	rtt := time.Since(start)
	if err != nil {
		return Result{RTT: rtt, Reason: failReason(ctx, err, phaseNames[phase.Load()])}
	}
	defer resp.Body.Close()
	status := "status " + strconv.Itoa(resp.StatusCode)
	if !c.statusOK(resp.StatusCode) {
		return Result{RTT: rtt, Reason: status}
	}
	if c.cfg.BodyContains != "" || c.body != nil {
		body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBody))
		if err != nil {
			return Result{RTT: rtt, Reason: "body: " + failReason(ctx, err, "read")}
		}
		if !bytes.Contains(body, []byte(c.cfg.BodyContains)) || (c.body != nil && !c.body.Match(body)) {
			return Result{RTT: rtt, Reason: "body does not match"}
		}
	}
	return Result{OK: true, RTT: rtt, Reason: status}
}

func (c *HTTPChecker) statusOK(code int) bool {
	if c.cfg.Status == nil {
		return code >= 200 && code <= 399
	}
	return slices.Contains(c.cfg.Status, code)
}

// Equal reports whether other is an HTTP check of the same definition,
// with the same CA and client certificate contents, from files or PEM.
func (c *HTTPChecker) Equal(other Checker) bool {
	o, ok := other.(*HTTPChecker)
	return ok && reflect.DeepEqual(c.cfg, o.cfg) && reflect.DeepEqual(c.files, o.files)
}

// String names the check in logs.
func (c *HTTPChecker) String() string { return c.cfg.Method + " " + c.url }
