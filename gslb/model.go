package gslb

import (
	"net/netip"
	"time"

	"github.com/meridian-gslb/meridian/gslb/health"
)

// State is a target's health as the engine sees it: health.State, the one
// state type of checks, vantages and engine, named here for the engine's
// callers.
type State = health.State

// Target states. Unknown is a target with no result yet; whether it counts
// as up is the engine's UnknownIsUp setting.
const (
	Unknown = health.Unknown
	Up      = health.Up
	Down    = health.Down
)

// HealthView is what the engine reads of health: a state per target and,
// for the latency policy, a smoothed round-trip time per region. The
// engine reads it when it builds its plan, never per query; a view with a
// health.Snapshot behind it (HealthMap) is read as one snapshot, its
// vantages' times included.
type HealthView interface {
	State(target string) State
	// RTT is the measured round-trip time to a region's targets (from
	// this node, or the median over the vantages); ok is false with no
	// measurement.
	RTT(region string) (rtt time.Duration, ok bool)
}

// NearRTT is implemented by health views measured from several vantages:
// the latency policy then orders regions by the round-trip times seen
// from the vantage nearest the client, the best stand-in for the
// client's own.
type NearRTT interface {
	// NearestRTTs returns the round-trip times, by region, of the
	// vantage nearest a point, or nil with none. The map is not changed
	// afterwards: a decision reads one vantage's times.
	NearestRTTs(lat, lon float64) map[string]time.Duration
}

// Region is a place a record's pools live in.
type Region struct {
	Name      string
	Lat, Lon  float64
	Continent string
	Countries []string
	// Bias stretches (positive) or shrinks (negative) the region's pull in
	// the proximity policy, as Route 53 geoproximity bias does: the
	// distance used is the real one times (1 - Bias/100). -99 to 99.
	Bias float64
}

// Target is one address of a pool.
type Target struct {
	ID     string // health identity, unique across the configuration
	Addr   netip.Addr
	Weight uint32 // share in weighted choices; 0 never answers
}

// Pool is a region's set of targets for one record.
type Pool struct {
	Name       string
	Region     *Region
	Weight     uint32 // share in the weighted region policy
	MinHealthy int    // eligible while at least this many targets are healthy (capacity)
	Targets    []Target
	// HTTPS overrides the record's service parameters when this pool
	// answers; nil: the record's.
	HTTPS *ServiceParams
}

// FailMode says what a record answers when no pool is eligible.
type FailMode uint8

// Fail modes.
const (
	FailOpen     FailMode = iota // answer as if every target were up
	FailServfail                 // SERVFAIL: resolvers try again soon
	FailNoData                   // NOERROR with no address
)

// Record is a dynamic A or AAAA record.
type Record struct {
	Name        string // lower-case, fully qualified
	Type        uint16 // dns.TypeA or dns.TypeAAAA
	TTL         uint32
	FallbackTTL uint32 // TTL when answered from a fallback pool; 0 = TTL
	Regions     RegionPolicy
	Targets     TargetPolicy
	Pools       []*Pool
	Fail        FailMode
	// HTTPS, when set, makes the name answer HTTPS queries too: one
	// ServiceMode record whose address hints are the decisions of the
	// name's A and AAAA records (see ServiceParams).
	HTTPS *ServiceParams
	// Load makes the answers follow the forwarders' load reports: a pool
	// past its target keeps a falling share of its clients.
	Load LoadMode

	idx int // position in the engine's records, set by New
}

// Client is who asks, as far as the decision needs to know.
type Client struct {
	Addr   netip.Addr
	Prefix int // the bits of Addr that identify the client: ECS source prefix, else the address length

	Located                         bool
	Country, Continent, Subdivision string
	Lat, Lon                        float64
	HasCoords                       bool
	Region                          string // set when an operator's CIDR table names the region outright
	NetworkBits                     int    // length of the geo network that matched

	geo      *geoState // the index that locates the client (Engine.Locate), whose partitions give the scope
	resolved bool      // the location fields are filled from geo
}

// Outcome says how a decision ended.
type Outcome uint8

// Decision outcomes.
const (
	Answered Outcome = iota // from the client's best eligible pool
	Fallback                // from a pool after the client's best one
	Opened                  // nothing eligible; fail open
	Servfail                // nothing eligible; fail closed with SERVFAIL
	NoData                  // nothing eligible (or nothing left), no address
)

func (o Outcome) String() string {
	switch o {
	case Answered:
		return "answered"
	case Fallback:
		return "fallback"
	case Opened:
		return "fail-open"
	case Servfail:
		return "servfail"
	}
	return "nodata"
}

// Decision is the engine's answer for one query.
type Decision struct {
	Outcome Outcome
	Pool    *Pool
	Addrs   []netip.Addr
	TTL     uint32
	// Scope is the ECS scope prefix: the widest prefix of the client's
	// address for which this decision would be the same (RFC 7871 7.2.1);
	// 0 when it does not depend on the client.
	Scope int
	// Unlocated: the order depends on where the client is, and no geo
	// source knows (meridian_geo_unlocated_answers_total).
	Unlocated bool
}
