// Package gossipkey reads the cluster's gossip keys (base64, one per
// line), which the DNS node, the probe agent and the forwarder all hold.
package gossipkey
