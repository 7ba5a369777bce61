package dnsfront

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/cookie"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/dnstap"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/rrl"
	"github.com/meridian-gslb/meridian/gslb/dnsfront/xfr"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/meridian-gslb/meridian/zones/dnssec"
	"github.com/miekg/dns"
)

// DefaultUDPSize is the EDNS payload size advertised and honoured when the
// configuration does not say (DNS Flag Day 2020).
const DefaultUDPSize = 1232

// State is everything a query is answered from. It is never modified once
// published; reloads publish a new one.
type State struct {
	Zones    *zones.Set
	UDPSize  int    // largest UDP answer we send; 0 means DefaultUDPSize
	Chaos    bool   // answer CHAOS TXT identity queries
	Identity string // id.server and hostname.bind
	Version  string // version.bind and version.server

	// Dynamic records: the engine deciding them (it locates clients with
	// its geo index, Engine.SetGeo), and whether and how far EDNS Client
	// Subnet is used.
	GSLB          *gslb.Engine
	ECS           bool
	ECSMaxPrefix4 int
	ECSMaxPrefix6 int
	// QuerySample is the share of dynamic answers logged with their
	// decision (0 to 1).
	QuerySample float64
	// Cookies makes and checks DNS server cookies; nil: cookies are
	// neither answered nor checked.
	Cookies *cookie.Jar
	// Dnstap logs queries and responses; nil: off. It outlives a reload
	// (the node hands each new State the one it started with).
	Dnstap *dnstap.Tap
	// Signers sign the zones that have one, by origin; a DO query for
	// such a zone gets signed answers (signed.go).
	Signers map[string]*dnssec.Signer
	// RRL limits the rate of UDP responses per client prefix; nil: off.
	// A reload with the same settings should keep the table (and its
	// buckets): see rrl.Table.Config.
	RRL *rrl.Table
	// Transfers serves AXFR and IXFR (gslb/dnsfront/xfr); nil: every
	// transfer request is refused, and no query pays for the check.
	Transfers *xfr.Table

	wire        wireTable                 // static answers in wire form, built by Store
	dynCounters map[string]*zoneCounters  // by dynamic name, built by Store
	dynSigned   map[string]*dnssec.Signer // the signers of dynamic names of signed zones, built by Store
	dynTypes    map[string][]uint16       // the types those names answer, for their NSEC, built by Store

	// counters of this configuration's regions (kept by name across
	// reloads; the zones' are in wire)
	regionCounters map[string]*atomic.Uint64
}

// Handler answers DNS queries from the current State.
type Handler struct {
	state   atomic.Pointer[State]
	stats   *stats
	log     *slog.Logger
	scratch sync.Pool
	// born and clock: tenths of a second since born, kept by a Server
	// (runClock) for the rate limiter.
	born  time.Time
	clock atomic.Uint32
}

// NewHandler returns a handler serving st.
func NewHandler(st *State, log *slog.Logger) (*Handler, error) {
	h := &Handler{log: log, stats: newStats(), born: time.Now()}
	h.scratch.New = func() any { return new(scratch) }
	if err := h.Store(st); err != nil {
		return nil, err
	}
	return h, nil
}

// Store prepares st and publishes it; queries that start afterwards are
// answered from it. It fails, leaving the old state serving, when a
// record cannot be put in wire form.
func (h *Handler) Store(st *State) error {
	if st.UDPSize == 0 {
		st.UDPSize = DefaultUDPSize
	}
	wire, err := buildWire(st.Zones)
	if err != nil {
		return err
	}
	st.wire = wire
	var regions []string
	if st.GSLB != nil {
		for name := range st.GSLB.Regions() {
			regions = append(regions, name)
		}
	}
	st.regionCounters = h.stats.resolve(st.wire, regions)
	if st.GSLB != nil {
		// A dynamic name's zone counters, resolved once here rather than
		// by a zone lookup on every query the fast path answers.
		st.dynCounters = map[string]*zoneCounters{}
		for _, r := range st.GSLB.AllRecords() {
			st.dynCounters[r.Name] = st.counters(st.Zones.Find(r.Name))
		}
	}
	st.resolveSigners()
	h.state.Store(st)
	return nil
}

// State returns the state currently served.
func (h *Handler) State() *State { return h.state.Load() }

// scratch is the per-query working memory, pooled so the common answer
// allocates nothing on its own.
type scratch struct {
	msg   dns.Msg
	opt   dns.OPT
	extra []dns.RR
	q     [1]dns.Question
	buf   []byte

	// fast path: the lower-cased query name, and the last one as a string
	name, lastName []byte
	lastStr        string

	// TCP: the idle time the connection has now, for edns-tcp-keepalive
	tcpIdle time.Duration
	// peerPort is the client's port, for dnstap; set by the listener
	peerPort  uint16
	tapMsg    dnstap.Message // what tap hands to dnstap
	keepalive dns.EDNS0_TCP_KEEPALIVE

	// dynamic answers
	fecs    ecs         // the fast path's parse of the query's Client Subnet
	fck     cookieQuery // the query's cookie
	fck2    cookieReply // the reply's cookie
	ckOpt   dns.EDNS0_COOKIE
	info    queryInfo // what the query was, for the counters
	timed   uint32    // queries seen, to time one in latencySample
	ecsOpt  dns.EDNS0_SUBNET
	gslb    gslb.Scratch
	client  gslb.Client
	dynRRs  []dns.RR
	dynA    []dns.A
	dynAAAA []dns.AAAA
	https   httpsScratch
	sig     dnssec.Scratch // signed answers
	sigKey  []byte         // the fast path's signature cache key
}
