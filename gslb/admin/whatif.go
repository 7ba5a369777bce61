package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/whatif"
	"github.com/meridian-gslb/meridian/internal/adminhttp"
	"github.com/miekg/dns"
)

// GuardSource is implemented by a Source whose configuration has
// [[guard]] rules: every change through the API is checked against them.
type GuardSource interface {
	Guards() []whatif.Guard
}

func (s *Server) guards() []whatif.Guard {
	if gs, ok := s.src.(GuardSource); ok {
		return gs.Guards()
	}
	return nil
}

// SimulateRequest is the body of POST /api/v1/simulate: the scenario
// under the command line's flag names, and optionally the clients to
// decide (lines of a clients file: "CLIENT [QUERIES]") and query counts
// by client label to weight the shares with.
type SimulateRequest struct {
	whatif.Scenario
	Clients []string           `json:"clients,omitempty"`
	Queries map[string]float64 `json:"queries,omitempty"`
}

// simulate answers POST /api/v1/simulate with the difference the
// scenario makes; nothing served changes.
func (s *Server) simulate(w http.ResponseWriter, r *http.Request) {
	var req SimulateRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		adminhttp.Fail(w, http.StatusBadRequest, "body must be a scenario, e.g. {\"down\": [\"eu-west\"]}: %v", err)
		return
	}
	e := s.src.Engine()
	if e == nil {
		adminhttp.Fail(w, http.StatusNotFound, "no dynamic records to simulate")
		return
	}
	clients, err := s.simulationClients(e, req)
	if err != nil {
		adminhttp.Fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	rep, err := whatif.Simulate(e, req.Scenario, clients, s.guards())
	if err != nil {
		adminhttp.Fail(w, scenarioStatus(err), "%v", err)
		return
	}
	adminhttp.WriteJSON(w, http.StatusOK, rep)
}

func (s *Server) simulationClients(e *gslb.Engine, req SimulateRequest) (whatif.Clients, error) {
	var clients whatif.Clients
	var err error
	if len(req.Clients) > 0 {
		clients, err = whatif.ReadClients(strings.NewReader(strings.Join(req.Clients, "\n")), "clients", e.GeoIndex())
	} else {
		clients, err = whatif.DefaultClients(e.GeoIndex())
	}
	if err != nil {
		return clients, err
	}
	if req.Queries != nil {
		clients = whatif.Weighted(clients, req.Queries)
	}
	return clients, nil
}

// scenarioStatus is the HTTP status of a scenario the engine refused.
func scenarioStatus(err error) int {
	if errors.Is(err, whatif.ErrUnknownName) {
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

// scenarioOf turns a change request into the scenario it would be; the
// body, when read, is put back for the handler.
type scenarioOf func(r *http.Request) (whatif.Scenario, error)

// whatIf wraps a change endpoint: with ?dry_run=true it answers the
// difference the change would make and changes nothing (a read: it needs
// only what reads need); otherwise it needs the token, and a change that
// breaks a guard is refused with 409 unless ?force=true.
func (s *Server) whatIf(kind string, of scenarioOf, h http.HandlerFunc) http.HandlerFunc {
	change := s.auth.Change(s.guard(kind, of, h))
	dry := s.auth.Read(func(w http.ResponseWriter, r *http.Request) {
		sc, err := of(r)
		if err != nil {
			adminhttp.Fail(w, http.StatusBadRequest, "%v", err)
			return
		}
		e := s.src.Engine()
		if e == nil {
			adminhttp.Fail(w, http.StatusNotFound, "no dynamic records")
			return
		}
		clients, err := whatif.DefaultClients(e.GeoIndex())
		if err != nil {
			adminhttp.Fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		rep, err := whatif.Simulate(e, sc, clients, s.guards())
		if err != nil {
			adminhttp.Fail(w, scenarioStatus(err), "%v", err)
			return
		}
		adminhttp.WriteJSON(w, http.StatusOK, struct {
			DryRun bool `json:"dry_run"`
			*whatif.Report
		}{true, rep})
	})
	return func(w http.ResponseWriter, r *http.Request) {
		if flag(r, "dry_run") {
			dry(w, r)
			return
		}
		change(w, r)
	}
}

// flag reads a boolean query parameter: present and true, 1 or empty.
func flag(r *http.Request, name string) bool {
	if !r.URL.Query().Has(name) {
		return false
	}
	v := r.URL.Query().Get(name)
	b, err := strconv.ParseBool(v)
	return v == "" || (err == nil && b)
}

// guard refuses a change that breaks a guard (409, naming each), unless
// forced; a forced change is audited with the guards it breaks.
func (s *Server) guard(kind string, of scenarioOf, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		guards, e := s.guards(), s.src.Engine()
		if len(guards) == 0 || e == nil {
			h(w, r)
			return
		}
		sc, err := of(r)
		if err != nil {
			h(w, r) // malformed: the handler says why
			return
		}
		broken, err := whatif.Violations(e, sc, guards)
		if err != nil {
			h(w, r) // an unknown name: the handler's 404
			return
		}
		if len(broken) == 0 {
			h(w, r)
			return
		}
		msgs := make([]string, len(broken))
		for i, v := range broken {
			msgs[i] = v.Error()
		}
		if !flag(r, "force") {
			s.changes.WithLabelValues(kind, r.Method, "refused").Inc()
			s.log.Warn("audit: change refused", "method", r.Method, "path", r.URL.Path, "from", r.RemoteAddr, "reason", "guard", "guards", msgs)
			adminhttp.WriteJSON(w, http.StatusConflict, map[string]any{
				"error":  "refused: " + strings.Join(msgs, "; ") + " (add ?force=true to override; it is audited)",
				"guards": broken,
			})
			return
		}
		s.changes.WithLabelValues(kind, r.Method, "forced").Inc()
		s.log.Warn("audit: change forced past guards", "method", r.Method, "path", r.URL.Path, "from", r.RemoteAddr, "guards", msgs)
		h(w, r)
	}
}

// The scenarios of the change endpoints.

func regionDrainScenario(r *http.Request) (whatif.Scenario, error) {
	return drainScenario(r, r.PathValue("name")), nil
}

func targetDrainScenario(r *http.Request) (whatif.Scenario, error) {
	return drainScenario(r, r.PathValue("region")+"/"+r.PathValue("addr")), nil
}

func drainScenario(r *http.Request, name string) whatif.Scenario {
	if r.Method == http.MethodDelete {
		return whatif.Scenario{Undrain: []string{name}}
	}
	return whatif.Scenario{Drain: []string{name}}
}

func poolWeightScenario(r *http.Request) (whatif.Scenario, error) {
	name := strings.TrimSuffix(strings.ToLower(dns.Fqdn(r.PathValue("name"))), ".")
	key := name + "/" + strings.ToUpper(r.PathValue("type")) + "/" + r.PathValue("pool")
	return weightScenario(r, key)
}

func targetWeightScenario(r *http.Request) (whatif.Scenario, error) {
	return weightScenario(r, r.PathValue("region")+"/"+r.PathValue("addr"))
}

// weightScenario reads {"weight": N} (PUT) and puts the body back.
func weightScenario(r *http.Request, key string) (whatif.Scenario, error) {
	if r.Method == http.MethodDelete {
		return whatif.Scenario{Weight: []string{key + "=configured"}}, nil
	}
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return whatif.Scenario{}, err
	}
	var v struct {
		Weight *int64 `json:"weight"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Weight == nil || *v.Weight < 0 || *v.Weight > maxWeight {
		return whatif.Scenario{}, errors.New("body must be {\"weight\": N}, N 0 to 1000000")
	}
	return whatif.Scenario{Weight: []string{key + "=" + strconv.FormatInt(*v.Weight, 10)}}, nil
}

// explainGuarded is explain with the guards broken now: when health has
// taken regions out past a guard, failover goes on, and the explanation
// says which guard it broke.
func (s *Server) explainGuarded(w http.ResponseWriter, r *http.Request) {
	rec := &bufferedWriter{header: http.Header{}}
	s.explain(rec, r)
	e := s.src.Engine()
	var out map[string]any
	if rec.code != http.StatusOK || e == nil || len(s.guards()) == 0 || json.Unmarshal(rec.body.Bytes(), &out) != nil {
		rec.flush(w)
		return
	}
	out["guards_broken"] = whatif.Broken(s.guards(), e)
	adminhttp.WriteJSON(w, http.StatusOK, out)
}

// bufferedWriter holds a handler's response for a wrapper to amend.
type bufferedWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedWriter) WriteHeader(code int)        { b.code = code }

func (b *bufferedWriter) flush(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.code)
	_, _ = w.Write(b.body.Bytes())
}
