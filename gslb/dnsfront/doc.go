// Package dnsfront is Meridian's DNS front end: a miekg/dns Handler that
// turns queries into authoritative answers, and the UDP and TCP listeners
// that feed it.
//
// The handler validates each query once (opcode, question count, EDNS),
// picks the zone by longest match, asks the zone for the answer and packs
// the reply itself, so that EDNS limits, truncation of whole RRsets and the
// preservation of the query name's case are decided in one place. The data
// it answers from is an immutable State published through an atomic
// pointer: a reload builds a new State and swaps it in, and a query in
// flight keeps the one it started with.
package dnsfront
