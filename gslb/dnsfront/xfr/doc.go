// Package xfr serves zone transfers out to secondaries and tells them of
// changes: AXFR over TCP (RFC 5936), IXFR from the differences between a
// zone's successive loads (RFC 1995), TSIG (RFC 8945, with key files in
// the format of BIND's tsig-keygen) and NOTIFY (RFC 1996).
//
// It owns the settings of transfers: the [transfer] table (key files, how
// many versions a zone's history keeps) and each zone's [zone.transfer]
// (who may transfer it, whom to notify) and serial mode. A History is kept
// by the node from one load to the next: it sets each zone's serial and
// records what changed, and gives the DNS front end an immutable Table to
// serve transfers from. The query path of ordinary queries does not come
// here: a listener hands over only AXFR and IXFR questions, and only when
// a Table is served.
package xfr
