// Package dnssec signs a zone's answers online: the zone's keys in BIND's
// file format (one combined signing key, CSK, per zone, ECDSA P-256 or
// Ed25519), RRSIGs made once per distinct RRset and kept in a bounded cache
// keyed by the RRset's contents, and compact denial of existence (RFC 9824)
// for negative answers, so no name of the zone can be walked.
//
// It knows nothing of sockets: the DNS front end asks it for the
// signatures of the RRsets it is about to send.
package dnssec
