// Package rrl is response rate limiting for an authoritative DNS server,
// as Knot's mod-rrl, NSD and BIND do it: UDP answers are counted in token
// buckets keyed by the client's prefix, the class of the response and the
// name it is about, and over the rate a response is dropped or, every
// slip-th time, replaced by an empty truncated reply, so the server cannot
// be used to reflect and amplify traffic at a spoofed address while a real
// client behind the same prefix can still get its answer over TCP.
//
// The table has a fixed size: a flood of spoofed sources takes only the
// slots of buckets that were idle. The front end classifies each response
// and builds the truncated reply; this package only counts.
package rrl
