// Package cookie makes and checks DNS server cookies (RFC 7873) in the
// interoperable form of RFC 9018: version 1, a timestamp, and SipHash-2-4
// over the client cookie, the timestamp and the client's address, keyed
// with a secret the servers of a cluster share. Any of them accepts a
// cookie another made, and a secret can be rolled over: cookies made with
// the previous one stay valid until they expire.
//
// A client that returns a valid server cookie has proven its address: the
// rate limiter exempts it.
package cookie
