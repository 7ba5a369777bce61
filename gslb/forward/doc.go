// Package forward is Meridian's bundled forwarder (meridian forward): the
// L4 load balancer that fronts a region's VIP and spreads its traffic over
// the region's local pools of backends.
//
// The parts, from the configuration to the wire:
//
//   - Forwarder holds all upstream state in one place. The configuration
//     in force is an immutable snapshot (pools, backends, balancers,
//     listener settings) behind an atomic pointer, read without locks on
//     the connection path and replaced whole by a reload. What must
//     survive a reload lives beside it, keyed by pool and address: each
//     backend's health, drains, ejection and counters.
//   - Balancer is a one-method interface with seven policies: round robin,
//     smooth weighted round robin (nginx's), weighted least connections,
//     power of two choices, source hash, Maglev and weighted rendezvous.
//     Every policy asks one gate, Request.Available, which is where
//     health, drains, connection limits, outlier ejection and panic mode
//     are decided.
//   - Active health reuses package probes: a probes.Scheduler checks every
//     backend, its rise and fall hysteresis decides up and down, and its
//     sink moves backends in and out of rotation. Passive health ejects a
//     backend after consecutive connect failures, for longer each time,
//     within a cap on the share of the pool ejected.
//   - The TCP proxy copies with io.Copy between two *net.TCPConn, so Linux
//     moves the bytes with splice(2), passes each side's end on as a
//     half-close, and speaks the PROXY protocol both ways. TLS listeners
//     read the ClientHello's server name (package sni) and route by it
//     without terminating TLS. The UDP proxy keeps a flow per client and
//     answers from the listening address.
//   - The HTTP endpoints show it: a capacity endpoint that answers 200 only
//     while a pool has min_healthy backends in rotation, which is what
//     GSLB checks of the region should probe; the admin API listing
//     backends and draining them; and Prometheus metrics.
package forward
