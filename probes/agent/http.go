package agent

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/meridian-gslb/meridian/internal/adminhttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Result is one target's result as the agent's API shows it.
type Result struct {
	Target  string    `json:"target"`
	State   string    `json:"state"`
	RTTms   float64   `json:"rtt_ms,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Checked time.Time `json:"checked"`
}

var (
	agentTargetsDesc = prometheus.NewDesc("meridian_agent_targets",
		"Targets this vantage checks, by the state it sees.", []string{"state"}, nil)
	agentPlansDesc = prometheus.NewDesc("meridian_agent_plans",
		"Check plans followed: one per DNS node that published one.", nil, nil)
	agentMembersDesc = prometheus.NewDesc("meridian_agent_dns_nodes",
		"Live DNS nodes this vantage reports to.", nil, nil)
	agentBytesDesc = prometheus.NewDesc("meridian_agent_gossip_bytes_total",
		"Gossip bytes, by direction.", []string{"direction"}, nil)
)

// Handler serves the agent's own endpoints, for its supervisor and
// Prometheus: /healthz (alive), /readyz (joined, with a plan),
// /api/v1/results and /metrics.
func (a *Agent) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister((*agentCollector)(a), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		adminhttp.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case !a.node.Joined():
			// Why, when a join has failed: a wrong or missing cluster
			// key never mends by itself, and says so here.
			body := map[string]string{"status": "not joined"}
			if reason := a.node.JoinError(); reason != "" {
				body["reason"] = reason
			}
			adminhttp.WriteJSON(w, http.StatusServiceUnavailable, body)
		case len(a.node.Plans()) == 0:
			adminhttp.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "no check plan yet"})
		default:
			adminhttp.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}
	})
	mux.HandleFunc("GET /api/v1/results", func(w http.ResponseWriter, _ *http.Request) {
		adminhttp.WriteJSON(w, http.StatusOK, a.Results())
	})
	return mux
}

// Results returns the latest result of every target, by target.
func (a *Agent) Results() []Result {
	a.mu.Lock()
	out := make([]Result, 0, len(a.results))
	for id, r := range a.results {
		out = append(out, Result{Target: id, State: r.state.String(), RTTms: float64(time.Duration(r.rtt).Microseconds()) / 1000, Reason: r.reason, Checked: r.checked})
	}
	a.mu.Unlock()
	slices.SortFunc(out, func(x, y Result) int { return strings.Compare(x.Target, y.Target) })
	return out
}

type agentCollector Agent

func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- agentTargetsDesc
	ch <- agentPlansDesc
	ch <- agentMembersDesc
	ch <- agentBytesDesc
}

func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := (*Agent)(c)
	counts := map[string]int{"up": 0, "down": 0}
	for _, r := range a.Results() {
		counts[r.State]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(agentTargetsDesc, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(agentPlansDesc, prometheus.GaugeValue, float64(len(a.node.Plans())))
	dns := 0
	for _, m := range a.node.Members() {
		if m.Role == "dns" && m.State == "alive" {
			dns++
		}
	}
	ch <- prometheus.MustNewConstMetric(agentMembersDesc, prometheus.GaugeValue, float64(dns))
	sent, recv := a.node.Bytes()
	ch <- prometheus.MustNewConstMetric(agentBytesDesc, prometheus.CounterValue, float64(sent), "sent")
	ch <- prometheus.MustNewConstMetric(agentBytesDesc, prometheus.CounterValue, float64(recv), "received")
}
