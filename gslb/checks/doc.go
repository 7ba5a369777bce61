// Package checks runs a DNS node's own health checks of its GSLB targets
// (the node as its single vantage): the probes scheduler does the
// checking, and the states and smoothed round-trip times go into a
// health.Store, the same store the cluster writes when vantages decide
// instead. The engine follows the store, not this package.
package checks
