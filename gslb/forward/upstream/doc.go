// Package upstream is the forwarder's side of its backends: pools and
// backends, the one availability gate, the balancers, slow start, outlier
// detection and circuit breakers. The L4 and L7 proxies above it pick a
// backend from a Pool, tell it how the connection or request went, and
// release it; they know nothing of how the choice was made.
//
// The parts:
//
//   - Pool and Backend are a pool as the configuration in force has it,
//     immutable: a reload builds new ones. What must survive a reload
//     lives in PoolState and BackendState (health, drains, ejection,
//     runtime weights and counters), which a Registry keeps by pool name
//     and backend ID and Registry.Build reuses.
//   - Balancer is a one-method interface with seven policies: round robin,
//     smooth weighted round robin (nginx's), weighted least connections,
//     power of two choices, source hash, Maglev and weighted rendezvous.
//     Every policy asks one gate, Request.Available, which is where
//     health, drains, connection limits, outlier ejection, the circuit
//     breaker, a runtime weight of 0 and panic mode are decided.
//   - Slow start ramps a backend that (re)joins rotation from a tenth of
//     its weight to all of it (Backend.EffectiveWeight).
//   - Passive health: outlier detection ejects a backend after failures in
//     a row, for longer each time, within a cap on the share of the pool
//     ejected (Backend.Failed); the circuit breaker (gobreaker's state
//     machine, mirrored in atomics for the gate) refuses requests to a
//     failing backend for a while (Backend.Admit).
//   - Active health is fed from outside: the forwarder's probes.Scheduler
//     calls BackendState.SetHealth and PoolState.Refresh.
//
// Balancers and pools are built directly in this package's tests, without
// a configuration file; Registry.Build is the one path from the
// forwarder's configuration (package config) to a Pool.
package upstream
