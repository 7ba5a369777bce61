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
//   - Package l7 holds the L7 proxy (http and https listeners): routes,
//     retries, sticky sessions, TLS termination, rate limits, canaries,
//     the access log, and the HTTP/1.1 fast path's serving side (package
//     h1 parses). It never imports this package: it reads the
//     configuration in force through its own small l7.Snapshot interface
//     (an http listener's l7.Config and a pool with its L7 side, l7.Pool),
//     which the snapshot here satisfies, and gets the rest through
//     l7.Env (context, logger, and SetCanary for a canary guard's
//     rollback). The l7.Proxy keeps what outlives a reload on that side;
//     apply drives it in order: Prepare (files), NewConfig per http
//     listener, Bind, NewPool around each upstream pool, Publish once the
//     snapshot is in force.
//   - Per-request metrics are atomics and histograms of our own
//     (upstream.Histogram), read at scrape time by one collector
//     (metrics.go), which asks package l7 for the L7 proxy's; the access
//     log is JSON lines, sampled.
//   - The HTTP endpoints (http.go) show it: a capacity endpoint that
//     answers 200 only while a pool has min_healthy backends in rotation,
//     which is what GSLB checks of the region should probe; the admin API
//     listing backends, draining them, setting their weights and canary
//     shares; and Prometheus metrics.
package forward
