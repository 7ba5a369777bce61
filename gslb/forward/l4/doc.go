// Package l4 is the forwarder's L4 proxying: TCP, TLS routed by SNI
// without terminating it, and UDP.
//
// A listener reads the configuration in force through Env.Current once
// per connection (UDP: per new flow), so that its settings and pools
// agree, and picks a backend from an upstream.Pool, the one availability
// gate deciding (package upstream). The TCP proxy hands both sockets of
// a session to an event loop over epoll on Linux (loop_linux.go: no
// goroutine and no buffer per idle connection), elsewhere copies with a
// goroutine per direction (copyConn); it passes each side's end on as a
// half-close, and speaks the PROXY protocol both ways; tls listeners
// read the ClientHello's server name (package sni) and route by it. The
// UDP proxy keeps a flow per client, a socket connected to one backend,
// and answers from the listening address.
//
// The forwarder binds listeners with Bind and runs them with Serve; the
// L7 listeners share Config, the reject reasons and the listener metrics
// with these.
package l4
