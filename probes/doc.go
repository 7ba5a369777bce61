// Package probes runs active health checks against GSLB targets and keeps
// an up/down state per target.
//
// It has three parts, kept apart because they are reused apart:
//
//   - Checkers probe a target once and return a Result: TCPChecker (a
//     connect), HTTPChecker (a request over HTTP or HTTPS, judged by
//     status and body) and DNSChecker (a query, judged by rcode and
//     answer). The bundled forwarder reuses them for its backends.
//   - Hysteresis turns a stream of results into a State, so one lost packet
//     does not take a target down and one lucky answer does not bring it
//     back. It is a pure function of the previous Status and a Result, so
//     results gossiped from other regions can go through the same rule.
//   - Scheduler runs a checker per target on its interval, spread by
//     jitter, applies Hysteresis and hands every Status to a Sink.
//
// A CheckSpec describes one check as the configuration defines it;
// NewChecker builds its Checker. EncodePlan and DecodePlan carry a DNS
// node's specs to the probe agents as the check plan's JSON.
//
// The package decides nothing about answers: the engine turns what the Sink
// receives into its health view, and no check ever runs on the query path.
package probes
