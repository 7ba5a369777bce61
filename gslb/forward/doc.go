// Package forward is Meridian's bundled forwarder (meridian forward): the
// L4 and L7 load balancer that fronts a region's VIP and spreads its
// traffic over the region's local pools of backends.
//
// The parts, from the configuration to the wire:
//
//   - Forwarder holds all upstream state in one place. The configuration
//     in force is an immutable snapshot (pools, backends, balancers,
//     listener settings) behind an atomic pointer, read without locks on
//     the connection path and replaced whole by a reload. What must
//     survive a reload lives beside it, in an upstream.Registry keyed by
//     pool and address: each backend's health, drains, ejection and
//     counters.
//   - Package upstream holds pools and backends and what decides among
//     them: a one-method Balancer interface with seven policies (round
//     robin, smooth weighted round robin, weighted least connections,
//     power of two choices, source hash, Maglev and weighted rendezvous),
//     one availability gate every policy asks (health, drains, connection
//     limits, outlier ejection, the circuit breaker, a runtime weight of 0
//     and panic mode), slow start, outlier detection and the breakers, and
//     the Registry that keeps their state across reloads.
//   - Active health reuses package probes: a probes.Scheduler checks every
//     backend, its rise and fall hysteresis decides up and down, and its
//     sink moves backends in and out of rotation. Passive health ejects a
//     backend after consecutive connect failures, for longer each time,
//     within a cap on the share of the pool ejected.
//   - Package l4 holds the TCP proxy, which copies with io.Copy between
//     two *net.TCPConn, so Linux moves the bytes with splice(2), passes
//     each side's end on as a half-close, and speaks the PROXY protocol
//     both ways. TLS listeners read the ClientHello's server name
//     (package sni) and route by it without terminating TLS. The UDP
//     proxy keeps a flow per client and answers from the listening
//     address.
//   - The L7 proxy (http and https listeners) accepts connections itself,
//     terminates TLS, and serves plain HTTP/1.1 requests (GET, HEAD,
//     OPTIONS, DELETE, and POST, PUT, PATCH with a body of a few KiB, to
//     routes that only pick a backend) on a fast path of its own (package h1 parses, h1serve.go and h1transport.go serve): one goroutine
//     per connection, heads parsed in place, answers relayed with their
//     framing over kept backend connections. Anything else goes with the
//     connection to an http.Server, whose handler is the reference for
//     what a request gets; both read the snapshot on every request, so a
//     reload changes routes and pools under established connections and
//     WebSocket tunnels. Routes (route.go) match host, path, method,
//     headers, cookies and query parameters in a documented order of
//     precedence, and forward to a pool, redirect, or answer themselves;
//     a route's rate limit (package ratelimit) runs first, and its canary
//     pool takes a share of its requests that the admin API moves and an
//     automatic guard (package canary) moves back. On
//     the net/http side one httputil.ReverseProxy carries every request
//     (the fast path does the same in its own code): Rewrite sets the path
//     and the X-Forwarded-* and Forwarded headers (believed from
//     trusted_proxies only), and its transport, roundTripper, picks a
//     backend per try through the pool's balancer or sticky pin, the
//     same availability gate and each backend's circuit breaker, sends
//     it with the pool's keep-alive http.Transport, and retries on
//     another backend within a retry budget: connection failures for
//     any method, retry_statuses and timeouts for requests that may be
//     sent twice, with a body kept up to retry_buffer bytes. 5xx answers
//     and timeouts feed outlier detection and the breaker. https
//     listeners pick their certificate by SNI and read the files again
//     when they change; HTTP/2 over TLS, h2c on request.
//   - Per-request metrics are atomics and histograms of our own
//     (upstream.Histogram), read at scrape time; the access log is JSON lines,
//     sampled.
//   - The HTTP endpoints show it: a capacity endpoint that answers 200 only
//     while a pool has min_healthy backends in rotation, which is what
//     GSLB checks of the region should probe; the admin API listing
//     backends, draining them, setting their weights and canary shares;
//     and Prometheus metrics.
package forward
