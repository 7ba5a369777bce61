// Package loopback tells whether listen and gossip addresses stay on the
// host, which decides whether the DNS node and the cluster demand a key.
package loopback

import (
	"net"
	"net/netip"
)

// Beyond returns the first of the host:port addresses that is not on a
// loopback address ("" with none): gossip there needs a key. Empty
// addresses (an unset advertise) are skipped; "localhost" counts as
// loopback, any other name does not.
func Beyond(addrs ...string) string {
	for _, hostport := range addrs {
		if hostport == "" {
			continue
		}
		host, _, err := net.SplitHostPort(hostport)
		if err != nil {
			host = hostport
		}
		if a, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !a.IsLoopback()) {
			return hostport
		}
	}
	return ""
}
