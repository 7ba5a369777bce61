// Package zones holds authoritative zone data and answers lookups against it
// with the semantics of RFC 1034 section 4.3.2, RFC 2308 (negative answers),
// RFC 4592 (wildcards) and RFC 8482 (ANY).
//
// A Zone is built once from RFC 1035 master files and inline records,
// validated (SOA and apex NS present, no CNAME beside other data, nothing
// outside the origin) and then never modified: reloads build a new Set and
// publish it atomically. Lookup results share the zone's slices for static
// data, so the query path allocates nothing for the common answers; callers
// must treat every returned slice as read-only.
//
// The package does no I/O beyond reading zone files at load and knows
// nothing about sockets or packets.
package zones
