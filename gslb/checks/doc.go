// Package checks runs a DNS node's own health checks of its GSLB targets
// (the node as its single vantage) and feeds the results to the engine: the
// probes scheduler does the checking, a gslb.HealthMap holds the states,
// and the engine's plan is rebuilt when a state changes. The gossip cluster
// will add other vantages' votes behind the same HealthView.
package checks
