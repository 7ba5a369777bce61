// Package dnsfront is Meridian's DNS front end: the UDP and TCP listeners
// and the query path they share, from a raw packet to a raw reply.
//
// Each packet takes the fast path when it can (the common query parsed
// straight from the bytes, the reply assembled from wire data prepared at
// load or from the engine's decision) and the full path otherwise (unpack
// with miekg/dns, validate opcode, question and EDNS once, look up, pack),
// which decides EDNS limits, truncation of whole RRsets and the query
// name's case in one place and is the reference the fast path is tested
// against. The data answered from is an immutable State published through
// an atomic pointer: a reload builds a new State and swaps it in, and a
// query in flight keeps the one it started with.
package dnsfront
