// Package adminhttp holds what the three admin HTTP APIs (the DNS node's,
// the forwarder's and the probe agent's) share: JSON answers and errors,
// bearer-token checks in constant time, the audit line of a refused
// change, the listener's limits, and a strict decoder for request bodies
// that refuses what encoding/json lets through (duplicate keys, keys in
// another case, trailing data, null).
package adminhttp
