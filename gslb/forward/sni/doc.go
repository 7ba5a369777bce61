// Package sni reads the server name a TLS client asks for from its
// ClientHello, without terminating TLS, so that the forwarder can route a
// connection by name and pass every byte it read on to the backend.
//
// It reads only the TLS records that carry the ClientHello (RFC 8446
// section 4.1.2, RFC 5246 section 7.4.1.2) and the server_name extension
// (RFC 6066 section 3), never a byte past them, and bounds what it reads,
// since the client is not yet known to be anyone.
package sni
