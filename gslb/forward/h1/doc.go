// Package h1 reads the heads of HTTP/1.1 requests and responses in place,
// for the forwarder's HTTP/1.1 fast path: Reader buffers a connection,
// Request.Parse takes a request head the fast path may serve, and
// Response.Parse reads a backend's answer head and its framing. The
// serving itself (connections, routing, relaying) is the forwarder's.
//
// net/http's server and ReverseProxy cost about 70 µs of CPU per proxied
// request here, three times HAProxy's: ~100 allocations, header maps, a
// background read per request and hand-offs between the server's
// goroutine and the transport's read and write loops. Most requests a
// regional front end sees are plain: a GET, or a small POST, on a
// keep-alive connection to a route that only picks a backend. For those,
// one goroutine per client connection reads the head (and a body that
// fits its buffer) in place, writes it to a keep-alive backend
// connection, and copies the answer back, framing and all, as HAProxy
// does.
//
// The fast path takes a strict subset of HTTP/1.1 and hands anything else
// to net/http, with the bytes it has read, for the rest of the
// connection: chunked or large request bodies, methods other than GET,
// HEAD, OPTIONS, DELETE, POST, PUT and PATCH, upgrades, Expect, h2c,
// HTTP/1.0, heads past HeadMax, anything it would have to judge
// malformed, and routes that rate-limit, answer themselves, or send to
// pools of HTTPS backends. net/http stays the reference for what those
// get. The forwarder's TestFastPathMatchesNetHTTP holds the two to the same answers and
// the same requests at the backends.
package h1
