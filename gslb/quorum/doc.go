// Package quorum turns the results of many vantages into one health state
// per target: a target is down only when a quorum of the vantages with
// fresh results sees it down.
//
// A Table holds the latest result of every (vantage, target) pair, merged
// from wherever it came (a direct message, gossip, a push/pull exchange),
// and recomputes states on demand. It does no I/O and keeps no goroutine:
// the cluster feeds it and the DNS node asks it for the verdict, so that
// every node holding the same results reaches the same verdict.
package quorum
