// Package gslb is Meridian's decision engine: for a dynamic record and a
// client, which region answers and with which addresses.
//
// A decision has two steps, as NS1's filter chains and Cloudflare's pool
// and origin steering do: a RegionPolicy orders the record's pools for the
// client (failover, geo, proximity, latency, weighted), and a TargetPolicy
// picks addresses from the first eligible pool (all up to N, weighted
// random, weighted stable per client subnet). A pool is eligible when
// enough of its targets are healthy and neither it nor its region is
// drained.
//
// Health and overrides change rarely and queries are many, so the engine
// turns them into an immutable plan (eligibility and healthy targets per
// pool, in weight order) when they change, published through an atomic
// pointer; a decision only reads the plan. The package does no I/O: health
// comes in through the HealthView interface, locations as Client values.
package gslb
