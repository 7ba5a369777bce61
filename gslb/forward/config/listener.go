package config

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ForwardListener is an address the forwarder accepts clients on.
type ForwardListener struct {
	Name     string `toml:"name"`
	Protocol string `toml:"protocol"` // tcp, tls (passthrough routed by SNI), udp
	Listen   string `toml:"listen"`   // ip:port
	Pool     string `toml:"pool"`     // the pool, or for tls the pool of names no route matches
	// MaxConnections caps the connections open at once (tcp, tls); the
	// ones past it are closed on accept.
	MaxConnections int      `toml:"max_connections"`
	IdleTimeout    Duration `toml:"idle_timeout"` // no byte either way for this long closes the connection or flow
	// HandshakeTimeout bounds the wait for a PROXY header and a
	// ClientHello.
	HandshakeTimeout    Duration       `toml:"handshake_timeout"`
	AcceptProxyProtocol bool           `toml:"accept_proxy_protocol"` // clients come through a load balancer that sends PROXY v1 or v2
	MaxFlows            int            `toml:"max_flows"`             // udp: clients tracked at once; new ones past it are dropped
	Routes              []ForwardRoute `toml:"route"`                 // tls: SNI routes; http, https: request routes

	// http and https.

	// TrustedProxies are the addresses (CIDR or IP) whose X-Forwarded-For,
	// X-Forwarded-Proto, X-Forwarded-Host and Forwarded headers are
	// believed; from anyone else they are replaced.
	TrustedProxies    []string `toml:"trusted_proxies"`
	ReadHeaderTimeout Duration `toml:"read_header_timeout"` // a request's headers must arrive within it
	ReadTimeout       Duration `toml:"read_timeout"`        // the whole request, body included; 0: no limit
	WriteTimeout      Duration `toml:"write_timeout"`       // the whole response; 0: no limit
	MaxHeaderBytes    int      `toml:"max_header_bytes"`    // request line and headers
	MaxBodyBytes      int64    `toml:"max_body_bytes"`      // request body; 0: no limit
	// BodyTimeout is the longest wait for the next bytes of a request
	// body (nginx's client_body_timeout), and the grace before
	// MinBodyRate counts; "0s" turns both off.
	BodyTimeout Duration `toml:"body_timeout"`
	// MinBodyRate is the slowest a request body may arrive, in bytes a
	// second on average, once body_timeout has passed (Apache's
	// mod_reqtimeout MinRate); 0 turns it off.
	MinBodyRate     *int64            `toml:"min_body_rate"`
	H2C             bool              `toml:"h2c"`              // http: accept HTTP/2 without TLS (prior knowledge)
	ResponseHeaders map[string]string `toml:"response_headers"` // set on every response (HSTS and the like)
	Metrics         *bool             `toml:"metrics"`          // per-request metrics; default true
	// FastPath lets plain HTTP/1.1 requests (no upgrade, a body of a few
	// KiB at most, to routes without rate limits or HTTPS backends) skip
	// net/http; default true.
	FastPath *bool `toml:"fast_path"`
	// https: certificates, chosen by the ClientHello's server name, and
	// read again from their files every CertificateReload.
	TLSMinVersion     string               `toml:"tls_min_version"`
	CertificateReload Duration             `toml:"certificate_reload"`
	Certificates      []ForwardCertificate `toml:"certificate"`

	ListenerLoad // target_load, max_load, load_unit, vips: what load reports say it carries
}

// ForwardCertificate is a certificate chain and its key, PEM files.
type ForwardCertificate struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// IsHTTP reports whether the listener is an L7 one (http or https).
func (l *ForwardListener) IsHTTP() bool { return l.Protocol == "http" || l.Protocol == "https" }

// MetricsOn reports whether the listener keeps per-request metrics.
func (l *ForwardListener) MetricsOn() bool { return l.Metrics == nil || *l.Metrics }

// FastPathOn reports whether the listener's plain requests take the
// HTTP/1.1 fast path.
func (l *ForwardListener) FastPathOn() bool { return l.FastPath == nil || *l.FastPath }

// BodyRate is the effective MinBodyRate, in bytes a second.
func (l *ForwardListener) BodyRate() int64 {
	if l.MinBodyRate == nil {
		return DefaultMinBodyRate
	}
	return *l.MinBodyRate
}

func (l *ForwardListener) setDefaults(d *decoded, key string) {
	l.Protocol = strings.ToLower(cmp.Or(l.Protocol, "tcp"))
	l.MaxConnections = cmp.Or(l.MaxConnections, DefaultListenerMaxConns)
	l.MaxFlows = cmp.Or(l.MaxFlows, DefaultMaxFlows)
	switch {
	case l.Protocol == "udp":
		setDuration(&l.IdleTimeout, DefaultUDPIdle)
	case l.IsHTTP():
		setDuration(&l.IdleTimeout, DefaultHTTPIdle)
	default:
		setDuration(&l.IdleTimeout, DefaultTCPIdle)
	}
	setDuration(&l.HandshakeTimeout, DefaultHandshakeTimeout)
	setDuration(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDuration(&l.CertificateReload, DefaultCertificateReload)
	// body_timeout = "0s" is meaningful (no limit), so only an absent
	// key takes the default.
	if l.IsHTTP() && !d.has(key+".body_timeout") {
		l.BodyTimeout.Duration = DefaultBodyTimeout
	}
	l.MaxHeaderBytes = cmp.Or(l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	l.TLSMinVersion = cmp.Or(l.TLSMinVersion, DefaultTLSMinVersion)
	for j := range l.Routes {
		l.Routes[j].setDefaults()
	}
}

// validate checks listener l, at key ("listener[0]"), against the pools
// by name; addrs holds the addresses the listeners before it take.
func (l *ForwardListener) validate(v *validator, key string, pools map[string]*ForwardPool, addrs map[string]string) {
	if !slices.Contains(listenerProtos, l.Protocol) {
		v.fail(key+".protocol", "must be one of %s, got %q", strings.Join(listenerProtos, ", "), l.Protocol)
		return
	}
	l.validateListen(v, key, addrs)
	use := poolUser{v: v, l: l, pools: pools}
	if l.Pool != "" {
		use.pool(key+".pool", l.Pool)
	} else if (l.Protocol != "tls" && !l.IsHTTP()) || len(l.Routes) == 0 {
		v.fail(key+".pool", "missing: the pool to forward to")
	}
	if l.MaxConnections < 1 {
		v.fail(key+".max_connections", "must be at least 1, got %d", l.MaxConnections)
	}
	if l.MaxFlows < 1 {
		v.fail(key+".max_flows", "must be at least 1, got %d", l.MaxFlows)
	}
	if l.IdleTimeout.Duration < 0 {
		v.fail(key+".idle_timeout", "must be positive, got %s", l.IdleTimeout)
	}
	if l.HandshakeTimeout.Duration < 0 {
		v.fail(key+".handshake_timeout", "must be positive, got %s", l.HandshakeTimeout)
	}
	if l.Protocol == "udp" && l.AcceptProxyProtocol {
		v.fail(key+".accept_proxy_protocol", "is for tcp and tls listeners")
	}
	if l.IsHTTP() {
		l.validateHTTP(v, key, use)
		return
	}
	l.refuseHTTPKeys(v, key)
	l.validateSNIRoutes(v, key, use)
}

// validateListen checks the address, which no other listener of the
// same network may take.
func (l *ForwardListener) validateListen(v *validator, key string, addrs map[string]string) {
	if msg := checkListen(l.Listen); msg != "" {
		v.fail(key+".listen", "%s", msg)
		return
	}
	network := "tcp"
	if l.Protocol == "udp" {
		network = "udp"
	}
	ak := network + " " + l.Listen
	if other, dup := addrs[ak]; dup && !strings.HasSuffix(l.Listen, ":0") {
		v.fail(key+".listen", "%s %s is also listener %q's", network, l.Listen, other)
	}
	addrs[ak] = l.Name // port 0 is any free port: never the same twice
}

// poolUser checks a listener's references to pools.
type poolUser struct {
	v     *validator
	l     *ForwardListener
	pools map[string]*ForwardPool
}

// pool checks the pool named at key: it exists, and its settings suit
// the listener.
func (u poolUser) pool(key, name string) {
	p, l := u.pools[name], u.l
	switch {
	case p == nil:
		u.v.fail(key, "no [[pool]] is named %q", name)
	case l.Protocol != "tls" && l.Protocol != "https" && p.HashKey == "sni" && Hashing(p.Balance):
		u.v.fail(key, "pool %q hashes on sni, which only tls and https listeners read", name)
	case l.Protocol == "udp" && p.ProxyProtocol != "":
		u.v.fail(key, "pool %q sends a PROXY header, which the forwarder sends over TCP only", name)
	case l.IsHTTP() && p.ProxyProtocol != "":
		u.v.fail(key, "pool %q sends a PROXY header, which http listeners cannot: their connections to backends carry many clients' requests", name)
	}
}

// validateSNIRoutes checks the routes of a tcp, tls or udp listener:
// only tls listeners have them, and they match server names.
func (l *ForwardListener) validateSNIRoutes(v *validator, key string, use poolUser) {
	if l.Protocol != "tls" && len(l.Routes) > 0 {
		v.fail(key+".route", "SNI routes need protocol = \"tls\" (request routes: \"http\" or \"https\")")
	}
	seen := map[string]bool{}
	for j := range l.Routes {
		l.Routes[j].validateSNI(v, fmt.Sprintf("%s.route[%d]", key, j), use, seen)
	}
}

// refuseHTTPKeys fails the keys of http listeners set on another kind.
func (l *ForwardListener) refuseHTTPKeys(v *validator, key string) {
	set := map[string]bool{
		"trusted_proxies": len(l.TrustedProxies) > 0, "read_timeout": l.ReadTimeout.Duration != 0,
		"write_timeout": l.WriteTimeout.Duration != 0, "max_body_bytes": l.MaxBodyBytes != 0, "h2c": l.H2C,
		"response_headers": len(l.ResponseHeaders) > 0, "metrics": l.Metrics != nil, "fast_path": l.FastPath != nil, "certificate": len(l.Certificates) > 0,
	}
	for _, k := range []string{"read_header_timeout", "max_header_bytes", "tls_min_version", "certificate_reload", "body_timeout", "min_body_rate"} {
		set[k] = v.has(key + "." + k)
	}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if set[k] {
			v.fail(key+"."+k, "is for http and https listeners, not %s", l.Protocol)
		}
	}
}

// validateHTTP checks the keys of an http or https listener and its
// request routes.
func (l *ForwardListener) validateHTTP(v *validator, key string, use poolUser) {
	for _, tp := range l.TrustedProxies {
		if _, err := ParsePrefixOrAddr(tp); err != nil {
			v.fail(key+".trusted_proxies", "%q is neither a CIDR prefix nor an IP address", tp)
		}
	}
	for name, d := range map[string]Duration{"read_header_timeout": l.ReadHeaderTimeout, "read_timeout": l.ReadTimeout, "write_timeout": l.WriteTimeout, "body_timeout": l.BodyTimeout} {
		if d.Duration < 0 {
			v.fail(key+"."+name, "must not be negative, got %s", d)
		}
	}
	if l.MaxHeaderBytes < 1024 {
		v.fail(key+".max_header_bytes", "must be at least 1024, got %d", l.MaxHeaderBytes)
	}
	if l.BodyRate() < 0 {
		v.fail(key+".min_body_rate", "must not be negative (0 turns it off), got %d", l.BodyRate())
	}
	if l.MaxBodyBytes < 0 {
		v.fail(key+".max_body_bytes", "must not be negative (0 is no limit), got %d", l.MaxBodyBytes)
	}
	for name := range l.ResponseHeaders {
		if !validHeaderName(name) {
			v.fail(key+".response_headers", "%q is not a header name", name)
		}
	}
	if l.Protocol == "https" {
		l.validateTLS(v, key)
	} else {
		l.refuseTLSKeys(v, key)
	}
	names := map[string]bool{}
	for j := range l.Routes {
		l.Routes[j].validateHTTP(v, fmt.Sprintf("%s.route[%d]", key, j), j, use, names)
	}
}

// validateTLS checks the TLS keys of an https listener.
func (l *ForwardListener) validateTLS(v *validator, key string) {
	if l.H2C {
		v.fail(key+".h2c", "is HTTP/2 without TLS: for http listeners (https ones speak HTTP/2 over TLS anyway)")
	}
	if !slices.Contains(tlsVersions, l.TLSMinVersion) {
		v.fail(key+".tls_min_version", "must be 1.2 or 1.3, got %q", l.TLSMinVersion)
	}
	if l.CertificateReload.Duration < minCertificateReload {
		v.fail(key+".certificate_reload", "must be at least %s, got %s", minCertificateReload, l.CertificateReload)
	}
	if len(l.Certificates) == 0 {
		v.fail(key+".certificate", "missing: an https listener needs at least one [[listener.certificate]]")
	}
	for j, c := range l.Certificates {
		ckey := fmt.Sprintf("%s.certificate[%d]", key, j)
		if c.CertFile == "" {
			v.fail(ckey+".cert_file", "missing: the PEM certificate chain")
		}
		if c.KeyFile == "" {
			v.fail(ckey+".key_file", "missing: the PEM private key")
		}
	}
}

// refuseTLSKeys fails the TLS keys set on an http listener.
func (l *ForwardListener) refuseTLSKeys(v *validator, key string) {
	for _, k := range []string{"tls_min_version", "certificate_reload"} {
		if v.has(key + "." + k) {
			v.fail(key+"."+k, "is for https listeners")
		}
	}
	if len(l.Certificates) > 0 {
		v.fail(key+".certificate", "is for https listeners")
	}
}
