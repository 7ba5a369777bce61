package health

import (
	"net/netip"
	"strings"
)

// State is a target's health: what a check's hysteresis decides, what a
// vantage reports and what the engine reads.
type State uint8

// Target states. Unknown is a target with no result yet; whether it counts
// as up is the engine's UnknownIsUp setting. The values travel in gossip
// messages: do not reorder them.
const (
	Unknown State = iota
	Up
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// MarshalText writes the state's name, so JSON shows "up", not 1.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// TargetID names a GSLB target for health, drains and weights: its region
// and address, "eu-west/192.0.2.10". Two records answering the same address
// in the same region share it, and so share one health.
type TargetID string

// NewTargetID is the ID of the target at addr in region.
func NewTargetID(region string, addr netip.Addr) TargetID {
	return TargetID(region + "/" + addr.String())
}

// Region is the region part of the ID; "" when the ID has none.
func (id TargetID) Region() string {
	region, _, ok := strings.Cut(string(id), "/")
	if !ok {
		return ""
	}
	return region
}

func (id TargetID) String() string { return string(id) }
