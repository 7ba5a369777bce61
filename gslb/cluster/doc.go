// Package cluster is Meridian's gossip layer: DNS nodes and probe agents
// are members of one hashicorp/memberlist cluster, with their role in the
// node metadata.
//
// Probe agents (vantages) send their results straight to every DNS node:
// a state change at once, every result periodically, each a compact
// versioned message. DNS nodes publish the check plan to the probes and
// share the operators' overrides. Push/pull exchanges carry everything a
// node knows, so a node that joins or returns catches up in one exchange.
// Gossip is encrypted with the memberlist keyring.
//
// A Node only merges what it receives (results into a quorum.Table,
// plans, overrides) and signals; the DNS server and the probe agent decide
// what to do with it.
package cluster
