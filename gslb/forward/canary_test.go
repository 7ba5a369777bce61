package forward

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// put sends a change to the admin API with a JSON body.
func (h *harness) put(path, body string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest("PUT", h.admin+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := (&http.Client{Timeout: ioTimeout}).Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Canary rollout through the admin API: 0, 5, 10, 25, 50 and 100 percent
// of a route's requests go to the canary pool, each within a request of
// the share, then DELETE rolls back at once. Each change is audited and
// shown in the metrics; a reload keeps the share set at runtime.
func TestCanaryWeights(t *testing.T) {
	t.Parallel()
	stable, next := startHTTPBackend(t, "stable"), startHTTPBackend(t, "next")
	src := httpPool("v1", "", stable) + httpPool("v2", "", next) + listenerTOML("web", "http", "", `[[listener.route]]
name = "app"
path_prefix = "/"
pool = "v1"
canary = { pool = "v2", percent = 0 }`)
	h := startForwarder(t, src)
	c := httpClient()
	count := func(n int) int {
		to := 0
		for range n {
			if send(t, c, "GET", h.url("web")+"/", "", "", nil).seen.Backend == "next" {
				to++
			}
		}
		return to
	}
	if got := count(50); got != 0 {
		t.Fatalf("at 0%% the canary got %d of 50", got)
	}
	const n = 200
	for _, pct := range []int{5, 10, 25, 50, 100} {
		code, body := h.put("/api/v1/listeners/web/routes/app/canary", fmt.Sprintf(`{"percent": %d}`, pct))
		if code != http.StatusOK {
			t.Fatalf("PUT %d%%: %d %s", pct, code, body)
		}
		var v CanaryView
		if err := json.Unmarshal([]byte(body), &v); err != nil || v.Percent != pct || !v.Runtime || v.Canary != "v2" {
			t.Errorf("PUT %d%% answered %s", pct, body)
		}
		got := count(n)
		if want := n * pct / 100; got < want-1 || got > want+1 {
			t.Errorf("at %d%% the canary got %d of %d, want %d", pct, got, n, want)
		}
		if m := h.metric(`meridian_forward_canary_percent{listener="web",route="app"}`); m != float64(pct) {
			t.Errorf("canary_percent = %v, want %d", m, pct)
		}
	}
	// Instant rollback.
	if code, body := h.request("DELETE", "/api/v1/listeners/web/routes/app/canary", true); code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if got := count(50); got != 0 {
		t.Errorf("after the rollback the canary got %d of 50", got)
	}
	if !strings.Contains(h.log.String(), `msg="audit: canary share" listener=web route=app from_percent=100 percent=0 rollback=true`) {
		t.Errorf("the rollback is not audited:\n%s", h.log.String())
	}
	// A reload that leaves the file's percent alone keeps the runtime
	// share; one that changes it takes the file's.
	h.put("/api/v1/listeners/web/routes/app/canary", `{"percent": 50}`)
	h.reload(src)
	if _, pct, _ := h.f.Canary("web", "app"); pct != 50 {
		t.Errorf("after a reload the share is %d%%, want the runtime 50%%", pct)
	}
	h.reload(strings.Replace(src, "percent = 0", "percent = 10", 1))
	if _, pct, _ := h.f.Canary("web", "app"); pct != 10 {
		t.Errorf("after the file changed the share is %d%%, want the file's 10%%", pct)
	}
	// Refusals; the share stays at the file's 10%.
	for _, tt := range []struct {
		method, path, body string
		auth               bool
		want               int
	}{
		{"PUT", "/api/v1/listeners/web/routes/app/canary", `{"percent": 101}`, true, http.StatusBadRequest},
		{"PUT", "/api/v1/listeners/web/routes/app/canary", `{"share": 5}`, true, http.StatusBadRequest},
		{"PUT", "/api/v1/listeners/web/routes/nope/canary", `{"percent": 5}`, true, http.StatusNotFound},
		{"PUT", "/api/v1/listeners/web/routes/app/canary", `{"percent": 5}`, false, http.StatusUnauthorized},
		// What encoding/json would take quietly (issue 15, item 7).
		{"PUT", "/api/v1/listeners/web/routes/app/canary", `{"percent": 5, "percent": 7}`, true, http.StatusBadRequest},
		{"PUT", "/api/v1/listeners/web/routes/app/canary", `{"percent": 5} {}`, true, http.StatusBadRequest},
		{"PUT", "/api/v1/listeners/web/routes/app/canary", `{"Percent": 5}`, true, http.StatusBadRequest},
	} {
		var code int
		if tt.auth {
			code, _ = h.put(tt.path, tt.body)
		} else {
			code, _ = h.request(tt.method, tt.path, false)
		}
		if code != tt.want {
			t.Errorf("%s %s %s: %d, want %d", tt.method, tt.path, tt.body, code, tt.want)
		}
	}
	if _, pct, _ := h.f.Canary("web", "app"); pct != 10 {
		t.Errorf("after refused changes the share is %d%%, want 10%%", pct)
	}
	if code, body := h.put("/api/v1/listeners/web/routes/app/canary", `{"Percent": 5}`); !strings.Contains(body, `did you mean \"percent\"`) {
		t.Errorf(`{"Percent": 5}: %d %s, want a hint at "percent"`, code, body)
	}
}

// Blue-green within a pool: backend weights set at runtime shift the
// traffic, weight 0 takes a backend out without draining it, DELETE puts
// the configured weight back.
func TestBackendWeights(t *testing.T) {
	t.Parallel()
	blue, green := startHTTPBackend(t, "blue"), startHTTPBackend(t, "green")
	h := startForwarder(t, httpPool("web", `balance = "weighted_round_robin"`, blue, green)+listenerTOML("web", "http", "web", ""))
	c := httpClient()
	spread := func(n int) map[string]int {
		out := map[string]int{}
		for range n {
			out[send(t, c, "GET", h.url("web")+"/", "", "", nil).seen.Backend]++
		}
		return out
	}
	weight := "/api/v1/pools/web/backends/" + green.addr + "/weight"
	for _, tt := range []struct {
		blue, green int
		want        map[string]int // of 100
	}{
		{1, 0, map[string]int{"blue": 100}},
		{95, 5, map[string]int{"blue": 95, "green": 5}},
		{3, 1, map[string]int{"blue": 75, "green": 25}},
		{0, 1, map[string]int{"green": 100}},
	} {
		if code, body := h.put("/api/v1/pools/web/backends/"+blue.addr+"/weight", fmt.Sprintf(`{"weight": %d}`, tt.blue)); code != 200 {
			t.Fatalf("PUT blue: %d %s", code, body)
		}
		if code, body := h.put(weight, fmt.Sprintf(`{"weight": %d}`, tt.green)); code != 200 {
			t.Fatalf("PUT green: %d %s", code, body)
		}
		got := spread(100)
		if got["blue"] != tt.want["blue"] || got["green"] != tt.want["green"] {
			t.Errorf("weights %d/%d: %v, want %v", tt.blue, tt.green, got, tt.want)
		}
	}
	if v := h.backend("web", blue.addr); v.State != "weight-0" || v.RuntimeWeight == nil || *v.RuntimeWeight != 0 || v.ConfiguredWeight != 1 {
		t.Errorf("admin view of blue at weight 0: %+v", v)
	}
	h.request("DELETE", "/api/v1/pools/web/backends/"+blue.addr+"/weight", true)
	h.request("DELETE", weight, true)
	if got := spread(100); got["blue"] != 50 || got["green"] != 50 {
		t.Errorf("back on the configured weights: %v, want 50/50", got)
	}
}

// The automatic guard: a canary answering 5xx far more than its baseline
// is rolled back by itself, logged and counted; raising the share again
// re-arms the guard.
func TestCanaryGuardRollsBack(t *testing.T) {
	t.Parallel()
	stable, bad := startHTTPBackend(t, "stable"), startHTTPBackend(t, "bad")
	bad.status.Store(http.StatusInternalServerError)
	h := startForwarder(t, httpPool("v1", "", stable)+httpPool("v2", `[pool.outlier]
consecutive_failures = 0
[pool.http]
retries = 0`, bad)+listenerTOML("web", "http", "", `[[listener.route]]
name = "app"
pool = "v1"
[listener.route.canary]
pool = "v2"
percent = 50
[listener.route.canary.guard]
window = "10s"
interval = "20ms"
min_requests = 20
max_error_rate_delta = 0.05`))
	c := httpClient()
	for range 60 {
		send(t, c, "GET", h.url("web")+"/", "", "", nil)
	}
	testkit.Eventually(t, "the guard rolls the canary back", func() bool {
		_, pct, _ := h.f.Canary("web", "app")
		return pct == 0
	})
	before := bad.hits.Load()
	for range 20 {
		if r := send(t, c, "GET", h.url("web")+"/", "", "", nil); r.seen.Backend != "stable" {
			t.Fatalf("after the rollback a request went to %q", r.seen.Backend)
		}
	}
	if bad.hits.Load() != before {
		t.Error("the canary still got requests")
	}
	if got := h.metric(`meridian_forward_canary_rollbacks_total{listener="web",route="app"}`); got != 1 {
		t.Errorf("rollbacks = %v, want 1", got)
	}
	if !strings.Contains(h.log.String(), "canary rolled back") || !strings.Contains(h.log.String(), `from="canary guard"`) {
		t.Errorf("the rollback is not logged:\n%s", h.log.String())
	}
	code, body := h.request("GET", "/api/v1/listeners/web/routes/app/canary", false)
	if code != 200 || !strings.Contains(body, `"tripped": true`) {
		t.Errorf("canary view: %d %s", code, body)
	}
	// The operator tries again: the guard is re-armed.
	if code, _ := h.put("/api/v1/listeners/web/routes/app/canary", `{"percent": 10}`); code != 200 {
		t.Fatal("PUT failed")
	}
	if got := h.metric(`meridian_forward_canary_guard_tripped{listener="web",route="app"}`); got != 0 {
		t.Errorf("guard still tripped after a new rollout: %v", got)
	}
}
