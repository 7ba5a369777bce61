// Package l7 is the forwarder's HTTP proxy: its http and https listeners
// and what a request goes through from the client to a backend and back.
//
// The listeners (listener.go) accept connections themselves, terminate
// TLS (certs.go: the certificate by SNI, read again when the files
// change; HTTP/2 over TLS, h2c on request), and serve plain HTTP/1.1
// requests (GET, HEAD, OPTIONS, DELETE, and POST, PUT, PATCH with a body
// of a few KiB, to routes that only pick a backend) on a fast path of
// their own (package h1 parses; h1serve.go, h1transport.go and h1.go
// serve): one goroutine per connection, heads parsed in place, answers
// relayed with their framing over kept backend connections. Anything else
// goes with the connection to an http.Server, whose handler (proxy.go) is
// the reference for what a request gets.
//
// Both read the configuration in force on every request through Snapshot,
// so that a reload changes routes and pools under established connections
// and WebSocket tunnels. Routes (route.go) match host, path, method,
// headers, cookies and query parameters in a documented order of
// precedence, and forward to a pool, redirect, or answer themselves; a
// route's rate limit (limits.go, package ratelimit) runs first, and its
// canary pool takes a share of its requests that the admin API moves and
// an automatic guard (package canary) moves back.
//
// On the net/http side one httputil.ReverseProxy carries every request
// (the fast path does the same in its own code): Rewrite sets the path and
// the X-Forwarded-* and Forwarded headers (forwarded.go; believed from
// trusted_proxies only), and its transport (transport.go) picks a backend
// per try through the pool's balancer or sticky pin (sticky.go), the
// availability gate of package upstream and each backend's circuit
// breaker, sends it with the pool's keep-alive http.Transport, and
// retries (retry.go) on another backend within a retry budget: connection
// failures for any method, retry_statuses and timeouts for requests that
// may be sent twice, with a body kept up to retry_buffer bytes (body.go
// paces what the client sends). 5xx answers and timeouts feed outlier
// detection and the breaker. The access log (accesslog.go) is JSON lines,
// sampled.
//
// The forwarder (package forward) runs it and holds the configuration in
// force; this package never imports it. What it needs from there is
// small: Env (the forwarder's context and logger, and SetCanary for a
// guard's rollback) and Snapshot, two lookups in the snapshot in force.
// Proxy keeps what outlives a reload: routes' canary shares, guards and
// counters, pools' retry budgets and transports, the rate limiters, the
// access log. For each configuration the forwarder calls, under its lock,
// Prepare (what the files outside the configuration hold), NewConfig for
// each http listener, Bind for new ones, NewPool around each upstream
// pool, and Publish once its snapshot is in force.
package l7
