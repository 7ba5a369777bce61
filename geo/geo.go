package geo

import (
	"errors"
	"net/netip"
)

// Errors a caller may test with errors.Is. Each is wrapped with the file or
// the table row it concerns.
var (
	// ErrUnsupportedDatabase: the file is a valid MMDB of a kind this
	// package cannot read for locations (an ASN or ISP database, say, or a
	// City database opened as a flat one).
	ErrUnsupportedDatabase = errors.New("unsupported database type")
	// ErrInvalidRow: a Table row is malformed (bad prefix, unknown code,
	// coordinates out of range, or it says nothing).
	ErrInvalidRow = errors.New("invalid table row")
	// ErrDuplicatePrefix: two Table rows have the same prefix, so which one
	// applies would depend on their order.
	ErrDuplicatePrefix = errors.New("prefix listed twice")
)

// Location is what Meridian knows about where an address is.
type Location struct {
	Country     string // ISO 3166-1 alpha-2, upper case ("DE"); "" unknown
	Continent   string // AF AN AS EU NA OC SA; "" unknown
	Subdivision string // first-level ISO 3166-2 code without the country ("CA" for US-CA); "" unknown
	Lat, Lon    float64
	HasCoords   bool
	Region      string       // set only by a CIDR table row that maps straight to a region
	Network     netip.Prefix // the most specific network that matched (masked); its Bits() bound the ECS scope
}

// Locator finds the Location of an address.
type Locator interface {
	// Locate returns what is known of addr; ok is false when nothing matched.
	Locate(addr netip.Addr) (Location, bool)
}

// Chain asks each Locator in turn and returns the first match, so a Table
// placed first overrides the databases after it, and separate IPv4 and IPv6
// database files can sit side by side (each misses the other's family). A
// nil entry is skipped, which lets a caller leave out an optional source
// without rebuilding the slice.
type Chain []Locator

var _ Locator = Chain(nil)

// Locate returns the first match of the chain's locators.
func (c Chain) Locate(addr netip.Addr) (Location, bool) {
	for _, l := range c {
		if l == nil {
			continue
		}
		if loc, ok := l.Locate(addr); ok {
			return loc, true
		}
	}
	return Location{}, false
}

// normalize turns the address a query carries into the one the sources are
// keyed by: an IPv4-mapped IPv6 address is the IPv4 host it names (dual-stack
// sockets report IPv4 clients that way), and a zone never matters for
// where a host is.
func normalize(addr netip.Addr) netip.Addr {
	return addr.Unmap().WithZone("")
}

// known reports whether a location carries anything a policy can use.
func (l *Location) known() bool {
	return l.Country != "" || l.Continent != "" || l.Subdivision != "" || l.HasCoords || l.Region != ""
}
