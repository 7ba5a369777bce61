package l7

import (
	"net/http/httputil"
	"net/netip"
	"strings"

	"github.com/meridian-gslb/meridian/gslb/forward/h1"
)

// trustList is a listener's trusted_proxies: peers whose forwarding
// headers are believed.
type trustList []netip.Prefix

func (t trustList) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr returns the address of the client behind r, as far as the
// trusted proxies vouch for it: from a trusted peer, the rightmost
// X-Forwarded-For address that is not itself a trusted proxy (so a client
// cannot pass itself off as another by writing the header first), or
// Forwarded's for= when there is no X-Forwarded-For; otherwise, and when
// the headers say nothing usable, the peer itself. peer is trusted; in
// reads the request's headers.
func clientAddr(peer netip.Addr, in func(string) []string, trusted trustList) netip.Addr {
	peer = peer.Unmap()
	hops := forwardedFor(in)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseNode(hops[i])
		if !ok {
			break // a hop we cannot read: trust stops here
		}
		client = a
		if !trusted.trusts(a) {
			break
		}
	}
	return client
}

// forwardedFor returns the addresses the proxies before us recorded,
// nearest last.
func forwardedFor(in func(string) []string) []string {
	var hops []string
	if xff := in("X-Forwarded-For"); len(xff) > 0 {
		for _, line := range xff {
			for part := range strings.SplitSeq(line, ",") {
				hops = append(hops, strings.TrimSpace(part))
			}
		}
		return hops
	}
	for _, line := range in("Forwarded") {
		for elem := range strings.SplitSeq(line, ",") {
			for pair := range strings.SplitSeq(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					hops = append(hops, strings.Trim(v, `"`))
				}
			}
		}
	}
	return hops
}

// parseNode reads an address as X-Forwarded-For and Forwarded write them:
// "192.0.2.1", "192.0.2.1:4711", "[2001:db8::1]", "[2001:db8::1]:4711" or
// "2001:db8::1".
func parseNode(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// forwardedNames are the forwarding headers, in forwardedHeaders' order.
var forwardedNames = [4]string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded"}

// setForwarded writes the forwarding headers of the request to a backend.
// ReverseProxy has removed the client's.
func setForwarded(pr *httputil.ProxyRequest, rs *reqState) {
	proto := "http"
	if pr.In.TLS != nil {
		proto = "https"
	}
	vals := forwardedHeaders(rs, pr.In.Host, proto, pr.In.Header.Values)
	for i, v := range vals {
		pr.Out.Header.Set(forwardedNames[i], v)
	}
}

// forwardedHeaders returns the values of the forwarding headers
// (forwardedNames) for a request that came in with host and proto; in
// reads the client's headers. From a trusted peer they are carried on
// with this hop added, from anyone else replaced by what this hop saw.
func forwardedHeaders(rs *reqState, host, proto string, in func(string) []string) [4]string {
	peer := rs.peer.Addr().Unmap()
	peerIP := peer.String()
	elem := forwardedElement(peer, host, proto)
	if !rs.trustedPeer {
		return [4]string{peerIP, proto, host, elem}
	}
	first := func(name, or string) string {
		if v := in(name); len(v) > 0 && v[0] != "" {
			return v[0]
		}
		return or
	}
	out := [4]string{peerIP, first("X-Forwarded-Proto", proto), first("X-Forwarded-Host", host), elem}
	if prior := in("X-Forwarded-For"); len(prior) > 0 {
		out[0] = strings.Join(prior, ", ") + ", " + peerIP
	}
	if prior := in("Forwarded"); len(prior) > 0 {
		out[3] = strings.Join(prior, ", ") + ", " + elem
	}
	return out
}

// forwardedElement is this hop's Forwarded element (RFC 7239 section 4):
// values that are not tokens (IPv6 addresses, hosts with a port) quoted.
func forwardedElement(peer netip.Addr, host, proto string) string {
	var b strings.Builder
	b.WriteString("for=")
	if peer.Is6() {
		b.WriteString(`"[` + peer.String() + `]"`)
	} else {
		b.WriteString(peer.String())
	}
	if host != "" {
		b.WriteString(";host=")
		b.WriteString(quoteIfNeeded(host))
	}
	b.WriteString(";proto=")
	b.WriteString(proto)
	return b.String()
}

// quotedPair escapes a quoted-string's backslashes and quotes (RFC 9110,
// section 5.6.4).
var quotedPair = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

func quoteIfNeeded(s string) string {
	if h1.ValidToken(s) {
		return s
	}
	return `"` + quotedPair.Replace(s) + `"`
}

// clientProto is the scheme the client used, as far as trusted proxies
// vouch for it (xfp is its X-Forwarded-Proto): what secures a sticky
// cookie.
func clientProto(xfp string, tls, trustedPeer bool) string {
	if trustedPeer && (xfp == "https" || xfp == "http") {
		return xfp
	}
	if tls {
		return "https"
	}
	return "http"
}
