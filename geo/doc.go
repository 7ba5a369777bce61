// Package geo tells Meridian where a client address is: its country,
// continent, first-level subdivision and coordinates, or straight away the
// region an operator has assigned to its network. The GSLB engine asks a
// Locator for the EDNS Client Subnet address (or the resolver's) of every
// query and chooses a region from the answer; Location.Network bounds the
// ECS scope of the reply, since every address in it gets the same answer.
//
// Sources, usually stacked in a Chain, first match wins:
//
//   - Table: an operator's CIDR rows ("this network goes to region X" or
//     "this network is in DE"), longest prefix first. It is consulted
//     before any database, so it overrides them.
//   - MaxMind: GeoIP2 and GeoLite2 City and Country databases (and DB-IP's
//     MaxMind-compatible ones), read with geoip2-golang.
//   - Flat: the flat MMDB files of the ip-location-db project (DB-IP lite,
//     CC-BY), one file for IPv4 and one for IPv6. They carry no continent,
//     so it is derived from the country (ContinentOf).
//
// A Watcher serves a database file and reopens it when the file is replaced
// (as geoipupdate does, by renaming a new file over the old one), keeping
// the old data when the new file is broken.
//
// Every Locate is safe for concurrent use, does no I/O and, for the Table,
// allocates nothing. IPv4-mapped IPv6 addresses (::ffff:192.0.2.1) are
// looked up as the IPv4 address they carry, and a matched Network is then an
// IPv4 prefix.
//
// Databases are read into memory rather than memory-mapped: a replaced or
// truncated file can then never fault a lookup in flight, and a reader that
// a reload retired is reclaimed by the garbage collector once the last
// lookup using it returns, instead of being unmapped under it.
package geo
