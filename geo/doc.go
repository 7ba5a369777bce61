// Package geo tells Meridian where a client address is: its country,
// continent, first-level subdivision and coordinates, or straight away the
// region an operator has assigned to its network. The GSLB engine asks a
// Locator for the EDNS Client Subnet address (or the resolver's) of every
// query and chooses a region from the answer.
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
// the old data when the new file is broken or its Accept option refuses it.
//
// CapabilitiesOf says what a database carries beyond the country
// (coordinates, subdivision codes rather than names), judged from its
// first records since metadata cannot be trusted for it, so a caller can
// refuse a database its policies could not use instead of answering every
// client alike.
//
// An Index snapshots a chain of those sources so that one query reads one
// version of them, and cuts the address space into a Partition for any
// classification of locations: consecutive ranges, each the widest run of
// networks (from any source) whose locations fall in one class. The GSLB
// engine classes locations by the pool order its policy gives them, and
// the ECS scope of an answer is the widest prefix of the client inside its
// range: never covering a client answered otherwise, and as wide as that
// allows (RFC 7871 7.2.1; gdnsd merges its map trees the same way).
//
// Every Locate is safe for concurrent use, does no I/O and allocates
// nothing. IPv4-mapped IPv6 addresses (::ffff:192.0.2.1) are looked up as
// the IPv4 address they carry, and a matched Network is then an IPv4
// prefix.
//
// A database file is memory-mapped only while it is read: its networks
// become two sorted arrays of range starts (IPv4 and IPv6) with a location
// index each, neighbours with the same location merged, and the distinct
// locations once. A City database takes a fraction of its file size this
// way, lookups are a binary search, and a replaced or truncated file can
// never fault a lookup in flight, since nothing maps it any more.
package geo
