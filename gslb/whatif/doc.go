// Package whatif decides every dynamic record for a set of clients under
// the state in force and under a hypothetical one (regions or targets
// down or up, drains, pool weights) and reports the difference: which
// clients move from which region to which, the share of each region
// before and after, and the records left with no healthy answer. It also
// holds the guard rules ([[guard]]) that operator changes and
// simulations are checked against.
//
// A simulation forks the engine (gslb.Engine.Fork): the answers being
// served never change. It walks the clients once, streaming: memory is
// the size of the client set (a CIDR table's rows, a database's
// countries, a file's lines), not clients times records.
package whatif
