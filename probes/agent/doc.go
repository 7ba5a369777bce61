// Package agent is the probe agent, `meridian probe`: a vantage that joins
// the cluster knowing only its seeds, its name, its place and the key,
// learns the check plan from the DNS nodes, runs the checks with the
// scheduler of package probes, and reports to every DNS node: a state
// change at once, every result periodically.
package agent
