package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/cluster"
	"github.com/meridian-gslb/meridian/gslb/console"
	"github.com/meridian-gslb/meridian/gslb/quorum"
	"github.com/meridian-gslb/meridian/internal/adminhttp"
	"github.com/meridian-gslb/meridian/probes"
	"github.com/meridian-gslb/meridian/zones"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Source is what the API reads of the running server.
type Source interface {
	Engine() *gslb.Engine // nil without dynamic records
	Zones() *zones.Set
	Checks() map[string]probes.Status
	// Client is the engine's client for a subnet: capped like a query's
	// Client Subnet when ecs, located.
	Client(p netip.Prefix, ecs bool) gslb.Client
	Ready() bool
	// Reload reloads the configuration as SIGHUP does; a failure keeps
	// the old one serving and is returned.
	Reload() error
}

// Options configure the server.
type Options struct {
	Listen    string
	Token     []byte // bearer token for changes (and reads unless OpenReads); nil refuses changes
	OpenReads bool
	StateFile string // where overrides persist; "" keeps them in memory
	Log       *slog.Logger
	Metrics   prometheus.Gatherer // served at /metrics; nil serves none
	// Origin names this node in the overrides it writes, to break ties
	// between changes made at the same instant on two nodes.
	Origin string
	// Publish, when set, gets the overrides after every change made here,
	// to share with the other DNS nodes. It must not block.
	Publish func(Overrides)
}

// Server is the admin HTTP server.
type Server struct {
	src  Source
	opts Options
	log  *slog.Logger
	http *http.Server
	ln   net.Listener

	auth      *adminhttp.Guard // the token and open reads: who may read and change
	mu        sync.Mutex       // serialises changes and the state file
	overrides Overrides
	changes   *prometheus.CounterVec
}

// New loads the state file and prepares the server; Start listens.
func New(src Source, opts Options) (*Server, error) {
	o, err := loadState(opts.StateFile)
	if err != nil {
		return nil, err
	}
	s := &Server{src: src, opts: opts, log: opts.Log, overrides: o,
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_admin_changes_total", Help: "Changes made through the admin API, and refused attempts.",
		}, []string{"kind", "action", "result"}),
	}
	s.auth = &adminhttp.Guard{Token: opts.Token, OpenReads: opts.OpenReads, Log: opts.Log,
		Refused: func(r *http.Request, reason string) { s.changes.WithLabelValues("unknown", r.Method, reason).Inc() }}
	read, change := s.auth.Read, s.auth.Change
	mux := http.NewServeMux()
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", read(promhttp.HandlerFor(opts.Metrics, promhttp.HandlerOpts{}).ServeHTTP))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		adminhttp.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /api/v1/regions", read(s.regions))
	mux.HandleFunc("GET /api/v1/targets", read(s.targets))
	mux.HandleFunc("GET /api/v1/cluster", read(s.cluster))
	mux.HandleFunc("GET /api/v1/records", read(s.records))
	mux.HandleFunc("GET /api/v1/zones", read(s.zoneList))
	mux.HandleFunc("GET /api/v1/explain", read(s.explainGuarded)) // explain with the guards broken now (whatif.go)
	mux.HandleFunc("POST /api/v1/reload", change(s.reload))
	// Changes: each takes ?dry_run=true (the difference, nothing changed)
	// and is checked against the guards (whatif.go).
	mux.HandleFunc("PUT /api/v1/records/{name}/{type}/pools/{pool}/weight", s.whatIf("pool_weight", poolWeightScenario, s.poolWeight))
	mux.HandleFunc("DELETE /api/v1/records/{name}/{type}/pools/{pool}/weight", s.whatIf("pool_weight", poolWeightScenario, s.poolWeight))
	mux.HandleFunc("PUT /api/v1/targets/{region}/{addr}/weight", s.whatIf("target_weight", targetWeightScenario, s.targetWeight))
	mux.HandleFunc("DELETE /api/v1/targets/{region}/{addr}/weight", s.whatIf("target_weight", targetWeightScenario, s.targetWeight))
	mux.HandleFunc("POST /api/v1/regions/{name}/drain", s.whatIf("region", regionDrainScenario, s.drainRegion))
	mux.HandleFunc("DELETE /api/v1/regions/{name}/drain", s.whatIf("region", regionDrainScenario, s.drainRegion))
	mux.HandleFunc("POST /api/v1/targets/{region}/{addr}/drain", s.whatIf("target", targetDrainScenario, s.drainTarget))
	mux.HandleFunc("DELETE /api/v1/targets/{region}/{addr}/drain", s.whatIf("target", targetDrainScenario, s.drainTarget))
	mux.HandleFunc("POST /api/v1/simulate", read(s.simulate))
	console.Register(mux, console.Node, read) // the operator console at / (gslb/console)
	mux.HandleFunc("/", adminhttp.NotFound)
	s.http = adminhttp.NewServer(mux, s.log)
	return s, nil
}

// OpenReadsExpose is what anyone who reaches the API reads while
// admin.open_reads is on, as the warning at start says it.
const OpenReadsExpose = "every region, pool, target address and its health, the cluster's members and vantages, " +
	"the zones, and through explain the client-subnet-to-region map"

// Start listens and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", s.opts.Listen, err)
	}
	s.ln = ln
	adminhttp.WarnOpenReads(s.log, "admin API", ln.Addr(), s.opts.OpenReads, OpenReadsExpose)
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "err", err)
		}
	}()
	return nil
}

// Addr is where the server listens.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the server, letting requests in flight finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// Apply puts the persisted overrides on e, a newly built engine; names it
// does not know (removed by a reload) are kept for when they come back.
func (s *Server) Apply(e *gslb.Engine) {
	if e == nil {
		return
	}
	s.mu.Lock()
	o := s.overrides
	s.mu.Unlock()
	s.apply(e, o)
}

func (s *Server) apply(e *gslb.Engine, o Overrides) {
	for _, name := range o.Regions {
		if err := e.DrainRegion(name, true); err != nil {
			s.log.Warn("drained region not in the configuration", "region", name)
		}
	}
	for _, id := range o.Targets {
		if err := e.DrainTarget(id, true); err != nil {
			s.log.Warn("drained target not in the configuration", "target", id)
		}
	}
	for key, w := range o.PoolWeights {
		name, typ, pool := splitPoolKey(key)
		if _, err := e.SetPoolWeight(name, dns.StringToType[typ], pool, &w); err != nil {
			s.log.Warn("weighted pool not in the configuration", "pool", key)
		}
	}
	for id, w := range o.TargetWeights {
		if _, err := e.SetTargetWeight(id, &w); err != nil {
			s.log.Warn("weighted target not in the configuration", "target", id)
		}
	}
}

func splitPoolKey(key string) (name, typ, pool string) {
	parts := strings.SplitN(key, "/", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return parts[0], parts[1], parts[2]
}

// maxWeight bounds runtime weights; weights are shares, and a sum this
// size is far from overflowing anything.
const maxWeight = 1_000_000

// weightBody reads {"weight": N} for PUT; DELETE has no body and means
// "back to the configured weight" (rollback).
func weightBody(w http.ResponseWriter, r *http.Request) (*uint32, bool) {
	if r.Method == http.MethodDelete {
		return nil, true
	}
	var body struct {
		Weight *int64 `json:"weight"`
	}
	if err := adminhttp.DecodeStrict(r.Body, &body); err != nil {
		adminhttp.Fail(w, http.StatusBadRequest, "body must be {\"weight\": N}: %v", err)
		return nil, false
	}
	if body.Weight == nil || *body.Weight < 0 || *body.Weight > maxWeight {
		adminhttp.Fail(w, http.StatusBadRequest, "weight must be 0 to %d", maxWeight)
		return nil, false
	}
	v := uint32(*body.Weight)
	return &v, true
}

func (s *Server) poolWeight(w http.ResponseWriter, r *http.Request) {
	weight, ok := weightBody(w, r)
	if !ok {
		return
	}
	e := s.src.Engine()
	name := strings.ToLower(dns.Fqdn(r.PathValue("name")))
	typ := strings.ToUpper(r.PathValue("type"))
	qtype, known := dns.StringToType[typ]
	if e == nil || !known {
		adminhttp.Fail(w, http.StatusNotFound, "no dynamic record %s %s", name, typ)
		return
	}
	pool := r.PathValue("pool")
	key := "" // as the engine keys the pool's weight
	for _, rec := range e.Records(name) {
		for _, p := range rec.Pools {
			if rec.Type == qtype && p.Name == pool {
				key = gslb.PoolKey(rec, p)
			}
		}
	}
	if key == "" {
		adminhttp.Fail(w, http.StatusNotFound, "no pool %q in dynamic record %s %s", pool, name, typ)
		return
	}
	s.setWeight(w, r, "pool", key, weight, func(o *Overrides) *map[string]uint32 { return &o.PoolWeights },
		func() (uint32, error) { return e.SetPoolWeight(name, qtype, r.PathValue("pool"), weight) })
}

func (s *Server) targetWeight(w http.ResponseWriter, r *http.Request) {
	weight, ok := weightBody(w, r)
	if !ok {
		return
	}
	e := s.src.Engine()
	id := r.PathValue("region") + "/" + r.PathValue("addr")
	if e == nil || !e.HasTarget(id) {
		adminhttp.Fail(w, http.StatusNotFound, "no target %q", id)
		return
	}
	s.setWeight(w, r, "target", id, weight, func(o *Overrides) *map[string]uint32 { return &o.TargetWeights },
		func() (uint32, error) { return e.SetTargetWeight(id, weight) })
}

// setWeight persists a weight override (nil removes it), then applies it
// and audits old and new values. Callers have checked the name exists, so
// what is saved is what applies.
func (s *Server) setWeight(w http.ResponseWriter, r *http.Request, kind, key string, weight *uint32,
	field func(*Overrides) *map[string]uint32, apply func() (uint32, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.overrides
	*field(&next) = gslb.WithWeight(*field(&next), key, weight)
	if err := s.commit(next); err != nil {
		adminhttp.Fail(w, http.StatusInternalServerError, "could not save the change: %v", err)
		return
	}
	old, err := apply()
	if err != nil {
		adminhttp.Fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	newWeight := any("configured")
	if weight != nil {
		newWeight = *weight
	}
	s.changes.WithLabelValues(kind+"_weight", r.Method, "ok").Inc()
	adminhttp.Audit(s.log, r, "change", kind+"_weight", key, "old", old, "new", newWeight)
	adminhttp.WriteJSON(w, http.StatusOK, map[string]any{kind: key, "old": old, "new": newWeight})
}

// commit stamps, persists and publishes next as the overrides in force;
// s.mu is held. The caller applies the change to the engine.
func (s *Server) commit(next Overrides) error {
	next.Stamp = max(uint64(time.Now().UnixNano()), s.overrides.Stamp+1)
	next.Origin = s.opts.Origin
	if err := saveState(s.opts.StateFile, next); err != nil {
		s.log.Error("audit: change not saved", "err", err)
		return err
	}
	s.overrides = next
	if s.opts.Publish != nil {
		s.opts.Publish(next)
	}
	return nil
}

// Overrides returns the overrides in force.
func (s *Server) Overrides() Overrides {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overrides
}

// Replace makes o, a change made on another node, the overrides in force
// if it is newer than those held (last writer wins): persisted, then put
// on the engine in place of the old ones. It reports whether it did.
func (s *Server) Replace(o Overrides, e *gslb.Engine) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.overrides
	if !o.newer(old) {
		return false, nil
	}
	o.Version = stateVersion
	if err := saveState(s.opts.StateFile, o); err != nil {
		return false, err
	}
	s.overrides = o
	if e != nil {
		unapply(e, old, o)
		s.apply(e, o)
	}
	s.log.Info("audit: overrides from the cluster", "origin", o.Origin, "drained_regions", o.Regions,
		"drained_targets", o.Targets, "pool_weights", o.PoolWeights, "target_weights", o.TargetWeights)
	return true, nil
}

// unapply lifts from e the overrides of old that next no longer has.
func unapply(e *gslb.Engine, old, next Overrides) {
	for _, name := range old.Regions {
		if !slices.Contains(next.Regions, name) {
			_ = e.DrainRegion(name, false) // a name the engine does not know has nothing to lift
		}
	}
	for _, id := range old.Targets {
		if !slices.Contains(next.Targets, id) {
			_ = e.DrainTarget(id, false)
		}
	}
	for key := range old.PoolWeights {
		if _, ok := next.PoolWeights[key]; !ok {
			name, typ, pool := splitPoolKey(key)
			_, _ = e.SetPoolWeight(name, dns.StringToType[typ], pool, nil)
		}
	}
	for id := range old.TargetWeights {
		if _, ok := next.TargetWeights[id]; !ok {
			_, _ = e.SetTargetWeight(id, nil)
		}
	}
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.src.Ready() {
		adminhttp.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	adminhttp.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Region is a region as the API shows it.
type Region struct {
	Name      string      `json:"name"`
	Lat       float64     `json:"lat"`
	Lon       float64     `json:"lon"`
	Continent string      `json:"continent,omitempty"`
	Drained   bool        `json:"drained"`
	Networks  []string    `json:"networks,omitempty"` // geo.network rows that name the region, at most maxNetworks
	Up        int         `json:"targets_up"`
	Down      int         `json:"targets_down"`
	Unknown   int         `json:"targets_unknown"`
	Load      *RegionLoad `json:"load,omitempty"` // forwarders' reports and pools' shares (load.go)
}

func (s *Server) regions(w http.ResponseWriter, _ *http.Request) {
	e := s.src.Engine()
	out := []Region{}
	if e == nil {
		adminhttp.WriteJSON(w, http.StatusOK, out)
		return
	}
	drained, _ := e.Drains()
	states := s.targetStates(e)
	loads := regionLoads(e)
	networks := regionNetworks(e)
	for name, reg := range e.Regions() {
		r := Region{Name: name, Lat: reg.Lat, Lon: reg.Lon, Continent: reg.Continent, Drained: drained[name], Load: loads[name],
			Networks: networks[name]}
		for _, t := range states {
			if t.Region != name {
				continue
			}
			switch t.State {
			case "up":
				r.Up++
			case "down":
				r.Down++
			default:
				r.Unknown++
			}
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Region) int { return strings.Compare(a.Name, b.Name) })
	adminhttp.WriteJSON(w, http.StatusOK, out)
}

// maxNetworks bounds a region's networks in /api/v1/regions: a few are
// enough to pick a client of the region (the console's records view asks
// explain for the first), and a table of thousands of rows stays out of
// every read.
const maxNetworks = 4

// regionNetworks are the operator's CIDR rows that map straight to a
// region, by region, in the table's order.
func regionNetworks(e *gslb.Engine) map[string][]string {
	out := map[string][]string{}
	for pfx, loc := range e.GeoIndex().Rows() {
		if loc.Region != "" && len(out[loc.Region]) < maxNetworks {
			out[loc.Region] = append(out[loc.Region], pfx.String())
		}
	}
	return out
}

// Target is a target as the API shows it.
type Target struct {
	ID        string    `json:"id"`
	Region    string    `json:"region"`
	Address   string    `json:"address"`
	State     string    `json:"state"`
	Drained   bool      `json:"drained"`
	Reason    string    `json:"reason,omitempty"`     // why it is in its state now
	Since     time.Time `json:"since,omitzero"`       // when it last changed
	Checked   time.Time `json:"checked,omitzero"`     // the latest result
	RTTMillis float64   `json:"rtt_ms,omitempty"`     // of the latest successful check
	LastCheck string    `json:"last_check,omitempty"` // the latest result's reason
	// The vantages' votes: fresh ones from vantages not suspect count.
	// A node without a cluster is its own single vantage.
	VotesUp     int           `json:"votes_up"`
	VotesDown   int           `json:"votes_down"`
	VotesNeeded int           `json:"votes_needed_down,omitempty"` // down votes that take it out
	Stale       bool          `json:"stale"`                       // no vote counts: the state is the last verdict
	Vantages    []quorum.Vote `json:"vantages"`
}

// medianRTT is the median of the fresh, up votes' round-trip times, in
// milliseconds, or 0 without one.
func medianRTT(votes []quorum.Vote) float64 {
	var rtts []time.Duration
	for _, v := range votes {
		if v.Fresh && v.State == "up" && v.RTT > 0 {
			rtts = append(rtts, v.RTT)
		}
	}
	if len(rtts) == 0 {
		return 0
	}
	slices.Sort(rtts)
	return float64(rtts[len(rtts)/2].Microseconds()) / 1000
}

// ClusterSource is implemented by a Source whose node is a member of a
// cluster: health then comes from the vantages' votes.
type ClusterSource interface {
	Verdicts() map[string]quorum.Verdict
	ClusterStatus() ClusterStatus
}

// ClusterStatus is the cluster as this node sees it.
type ClusterStatus struct {
	Enabled    bool             `json:"enabled"`
	Name       string           `json:"name,omitempty"`
	Joined     bool             `json:"joined"`
	Quorum     string           `json:"quorum,omitempty"`
	StaleAfter string           `json:"stale_after,omitempty"`
	Members    []cluster.Member `json:"members"` // the live ones, then those lost

	Vantages []quorum.Vantage `json:"vantages"`
}

func (s *Server) cluster(w http.ResponseWriter, _ *http.Request) {
	cs, ok := s.src.(ClusterSource)
	if !ok {
		adminhttp.WriteJSON(w, http.StatusOK, ClusterStatus{Members: []cluster.Member{}, Vantages: []quorum.Vantage{}})
		return
	}
	st := cs.ClusterStatus()
	if st.Members == nil {
		st.Members = []cluster.Member{}
	}
	if st.Vantages == nil {
		st.Vantages = []quorum.Vantage{}
	}
	adminhttp.WriteJSON(w, http.StatusOK, st)
}

func (s *Server) targetStates(e *gslb.Engine) []Target {
	checks := s.src.Checks()
	var verdicts map[string]quorum.Verdict
	if cs, ok := s.src.(ClusterSource); ok {
		verdicts = cs.Verdicts()
	}
	now := time.Now()
	_, drained := e.Drains()
	seen := map[string]bool{}
	var out []Target
	for _, r := range e.AllRecords() {
		for _, p := range r.Pools {
			for _, t := range p.Targets {
				if seen[t.ID] {
					continue
				}
				seen[t.ID] = true
				tv := Target{ID: t.ID, Region: p.Region.Name, Address: t.Addr.String(), State: "unknown", Drained: drained[t.ID], Vantages: []quorum.Vote{}}
				if v, ok := verdicts[t.ID]; ok {
					tv.State, tv.Reason, tv.Since = v.State.String(), v.Reason, v.Since
					tv.VotesUp, tv.VotesDown, tv.VotesNeeded, tv.Stale, tv.Vantages = v.Up, v.Down, v.Need, v.Stale, v.Votes
					tv.RTTMillis = medianRTT(v.Votes)
				} else if st, ok := checks[t.ID]; ok && verdicts == nil {
					tv.State, tv.Reason, tv.Since, tv.Checked = st.State.String(), st.Reason, st.Since, st.Checked
					tv.LastCheck = st.Result.Reason
					if st.Result.OK {
						tv.RTTMillis = float64(st.Result.RTT.Microseconds()) / 1000
					}
					if st.State != probes.Unknown {
						vote := quorum.Vote{Vantage: "local", State: st.State.String(), Age: now.Sub(st.Checked), Reason: st.Result.Reason, Fresh: true, Status: quorum.StatusVoting}
						if st.Result.OK {
							vote.RTT = st.Result.RTT
						}
						tv.Vantages = append(tv.Vantages, vote)
						tv.VotesNeeded = 1
						if st.State == probes.Up {
							tv.VotesUp = 1
						} else {
							tv.VotesDown = 1
						}
					}
				}
				out = append(out, tv)
			}
		}
	}
	slices.SortFunc(out, func(a, b Target) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (s *Server) targets(w http.ResponseWriter, _ *http.Request) {
	out := []Target{}
	if e := s.src.Engine(); e != nil {
		out = append(out, s.targetStates(e)...)
	}
	adminhttp.WriteJSON(w, http.StatusOK, out)
}

// Record is a dynamic record as the API shows it.
type Record struct {
	Name   string           `json:"name"`
	Type   string           `json:"type"`
	TTL    uint32           `json:"ttl"`
	Policy string           `json:"policy"`
	Select string           `json:"select"`
	Pools  []gslb.Candidate `json:"pools"`
}

func (s *Server) records(w http.ResponseWriter, _ *http.Request) {
	out := []Record{}
	if e := s.src.Engine(); e != nil {
		for _, r := range e.AllRecords() {
			out = append(out, Record{Name: r.Name, Type: dns.TypeToString[r.Type], TTL: r.TTL,
				Policy: r.Regions.Name(), Select: r.Targets.Name(), Pools: e.Pools(r)})
		}
	}
	adminhttp.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, client := q.Get("name"), q.Get("client")
	if name == "" || client == "" {
		adminhttp.Fail(w, http.StatusBadRequest, "explain needs name and client (IP or IP/PREFIX); type defaults to A")
		return
	}
	qtype := dns.TypeA
	if t := q.Get("type"); t != "" {
		var ok bool
		if qtype, ok = dns.StringToType[strings.ToUpper(t)]; !ok {
			adminhttp.Fail(w, http.StatusBadRequest, "type %q is not a record type", t)
			return
		}
	}
	var p netip.Prefix
	ecs := strings.Contains(client, "/")
	var err error
	if ecs {
		p, err = netip.ParsePrefix(client)
		p = p.Masked()
	} else {
		var a netip.Addr
		if a, err = netip.ParseAddr(client); err == nil {
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
	}
	if err != nil {
		adminhttp.Fail(w, http.StatusBadRequest, "client: %v", err)
		return
	}
	e := s.src.Engine()
	if e != nil {
		for _, rec := range e.Records(strings.ToLower(dns.Fqdn(name))) {
			if rec.Type == qtype {
				c := s.src.Client(p, ecs)
				adminhttp.WriteJSON(w, http.StatusOK, e.Explain(rec, &c))
				return
			}
		}
	}
	adminhttp.Fail(w, http.StatusNotFound, "%s %s is not a dynamic record", name, dns.TypeToString[qtype])
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if err := s.src.Reload(); err != nil {
		s.changes.WithLabelValues("reload", r.Method, "failed").Inc()
		s.log.Warn("audit: reload failed", "from", r.RemoteAddr, "err", err)
		adminhttp.Fail(w, http.StatusUnprocessableEntity, "reload failed; the previous configuration keeps serving: %v", err)
		return
	}
	s.changes.WithLabelValues("reload", r.Method, "ok").Inc()
	adminhttp.Audit(s.log, r, "reload")
	adminhttp.WriteJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

func (s *Server) drainRegion(w http.ResponseWriter, r *http.Request) {
	s.drain(w, r, "region", r.PathValue("name"))
}

func (s *Server) drainTarget(w http.ResponseWriter, r *http.Request) {
	s.drain(w, r, "target", r.PathValue("region")+"/"+r.PathValue("addr"))
}

// drain sets (POST) or clears (DELETE) a drain: persisted first, then
// applied, then audited.
func (s *Server) drain(w http.ResponseWriter, r *http.Request, kind, name string) {
	on := r.Method == http.MethodPost
	e := s.src.Engine()
	known := e != nil && ((kind == "region" && e.Regions()[name] != nil) || (kind == "target" && e.HasTarget(name)))
	if !known {
		adminhttp.Fail(w, http.StatusNotFound, "no %s %q", kind, name)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.overrides
	var changed bool
	if kind == "region" {
		next.Regions, changed = setIn(next.Regions, name, on)
	} else {
		next.Targets, changed = setIn(next.Targets, name, on)
	}
	if changed {
		if err := s.commit(next); err != nil {
			adminhttp.Fail(w, http.StatusInternalServerError, "could not save the change: %v", err)
			return
		}
	}
	var err error
	if kind == "region" {
		err = e.DrainRegion(name, on)
	} else {
		err = e.DrainTarget(name, on)
	}
	if err != nil {
		adminhttp.Fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	s.changes.WithLabelValues(kind, r.Method, "ok").Inc()
	adminhttp.Audit(s.log, r, "change", kind, name, "drained", on, "was_drained", on != changed)
	adminhttp.WriteJSON(w, http.StatusOK, map[string]any{kind: name, "drained": on, "changed": changed})
}

// Collector returns the API's own metrics and the records' state, for the
// registry /metrics serves.
func (s *Server) Collector() prometheus.Collector { return (*collector)(s) }

type collector Server

var (
	eligibleDesc = prometheus.NewDesc("meridian_record_pools_eligible",
		"Pools of a dynamic record that can answer now (0: the record fails open or closed).", []string{"record", "type"}, nil)
	drainedDesc = prometheus.NewDesc("meridian_region_drained",
		"1 while an operator has drained the region.", []string{"region"}, nil)
	poolHealthyDesc = prometheus.NewDesc("meridian_pool_healthy_targets",
		"Targets of a pool that are up and usable (neither drained nor weighted 0).", []string{"record", "type", "pool", "region"}, nil)
	poolTargetsDesc = prometheus.NewDesc("meridian_pool_targets",
		"Targets of a pool.", []string{"record", "type", "pool", "region"}, nil)
	poolWeightDesc = prometheus.NewDesc("meridian_pool_weight",
		"A pool's weight in force, the runtime one when set (canary shifts show here).", []string{"record", "type", "pool", "region"}, nil)
)

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	c.changes.Describe(ch)
	ch <- eligibleDesc
	ch <- drainedDesc
	ch <- poolHealthyDesc
	ch <- poolTargetsDesc
	ch <- poolWeightDesc
	describeLoad(ch)
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.changes.Collect(ch)
	e := c.src.Engine()
	if e == nil {
		return
	}
	for _, r := range e.AllRecords() {
		n := 0
		typ := dns.TypeToString[r.Type]
		for _, p := range e.Pools(r) {
			if p.Eligible {
				n++
			}
			ch <- prometheus.MustNewConstMetric(poolHealthyDesc, prometheus.GaugeValue, float64(p.Healthy), r.Name, typ, p.Pool, p.Region)
			ch <- prometheus.MustNewConstMetric(poolTargetsDesc, prometheus.GaugeValue, float64(p.Total), r.Name, typ, p.Pool, p.Region)
			ch <- prometheus.MustNewConstMetric(poolWeightDesc, prometheus.GaugeValue, float64(p.Weight), r.Name, typ, p.Pool, p.Region)
		}
		ch <- prometheus.MustNewConstMetric(eligibleDesc, prometheus.GaugeValue, float64(n), r.Name, dns.TypeToString[r.Type])
	}
	collectLoad(ch, e)
	drained, _ := e.Drains()
	for name := range e.Regions() {
		v := 0.0
		if drained[name] {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(drainedDesc, prometheus.GaugeValue, v, name)
	}
}
