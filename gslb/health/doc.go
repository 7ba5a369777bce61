// Package health is what Meridian knows of its targets' health, whoever
// found it out: a typed target ID, one State, and one Store that this
// node's own checks (package checks) and the cluster's vantages (package
// cluster) write alike.
//
// A Store publishes an immutable Snapshot through an atomic pointer
// (read-copy-update, as gdnsd's monitoring table does): readers never
// lock, writers copy what they change and publish once per batch. The
// engine folds the snapshot into its plan (states, and the round-trip
// times the latency policy orders by), so no query reads the store.
//
// The package imports nothing of Meridian's: the engine, the checks, the
// probes and the cluster all depend on it, and it on none of them.
package health
