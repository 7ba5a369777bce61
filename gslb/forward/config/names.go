package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// validHeaderName reports whether s is an HTTP header field name (a token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", c) {
			return false
		}
	}
	return true
}

// ParsePrefixOrAddr parses a CIDR prefix, or an IP address as the prefix
// of that address alone. IPv4-mapped IPv6 is unmapped.
func ParsePrefixOrAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkListen returns why addr is not a listen address, or "".
// policyName reports whether s can name a rate limit policy: a token
// the RateLimit headers carry as it is (package ratelimit holds its
// names to the same rule).
func policyName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func checkListen(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not ip:port (write IPv6 as \"[::1]:443\")", addr)
	case host != "" && net.ParseIP(host) == nil:
		return fmt.Sprintf("%q: host must be an IP address, not a name", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("%q: port must be a number from 0 to 65535", addr)
	}
	return ""
}

// checkHostPort returns why addr is not a host:port to connect to, or "".
func checkHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Sprintf("%q is not host:port (write IPv6 as \"[2001:db8::1]:80\")", addr)
	}
	if _, err := netip.ParseAddr(host); err != nil && strings.ContainsAny(host, " /") {
		return fmt.Sprintf("%q: %q is neither an IP address nor a host name", addr, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("%q: port must be a number from 1 to 65535", addr)
	}
	return ""
}

// checkSNI returns why name cannot be matched against a ClientHello's
// server name, or "".
func checkSNI(name string) string {
	rest, wild := strings.CutPrefix(name, "*.")
	switch {
	case name == "":
		return "empty name"
	case strings.Contains(rest, "*"):
		return "a wildcard stands for one whole label, leftmost: \"*.example.com\""
	case wild && !strings.Contains(rest, "."):
		return "a wildcard needs at least two labels after it"
	case strings.ContainsAny(rest, " /:[]"):
		return "not a host name"
	}
	return ""
}
