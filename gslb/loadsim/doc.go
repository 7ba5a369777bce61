// Package loadsim is a deterministic simulation of the load feedback
// loop: clients behind caching resolvers ask the engine for a record that
// follows load (load = "headroom"), each resolver keeps the answer for the
// record's TTL, the regions' loads are the demand of the resolvers whose
// cached answer names them, and those loads are reported back to the
// engine once a simulated second, as the forwarders' reports are in a
// cluster. No clock, no sockets: the same inputs give the same curve,
// which docs/load.md shows.
package loadsim
