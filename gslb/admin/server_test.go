package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/examples"
	"github.com/meridian-gslb/meridian/gslb"
	"github.com/meridian-gslb/meridian/gslb/config"
	"github.com/meridian-gslb/meridian/probes"
	"github.com/meridian-gslb/meridian/zones"
)

const token = "0123456789abcdef-test-token"

// source serves the embedded quickstart's real zones and engine.
type source struct {
	engine    *gslb.Engine
	zones     *zones.Set
	ready     atomic.Bool
	reloadErr error
}

func (s *source) Engine() *gslb.Engine             { return s.engine }
func (s *source) Zones() *zones.Set                { return s.zones }
func (s *source) Checks() map[string]probes.Status { return map[string]probes.Status{} }
func (s *source) Ready() bool                      { return s.ready.Load() }
func (s *source) Reload() error                    { return s.reloadErr }
func (s *source) Client(p netip.Prefix, _ bool) gslb.Client {
	return gslb.Client{Addr: p.Addr(), Prefix: p.Bits()}
}

func quickstart(t *testing.T) *source {
	t.Helper()
	cfg, err := config.LoadFS(examples.Quickstart, examples.QuickstartConfig)
	if err != nil {
		t.Fatal(err)
	}
	set, err := cfg.LoadZones()
	if err != nil {
		t.Fatal(err)
	}
	g, err := cfg.BuildGSLB()
	if err != nil {
		t.Fatal(err)
	}
	e, err := gslb.New(g.Records, gslb.NewHealthMap(), gslb.Options{UnknownIsUp: true})
	if err != nil {
		t.Fatal(err)
	}
	return &source{engine: e, zones: set}
}

func start(t *testing.T, src *source, opts Options) (*Server, string) {
	t.Helper()
	opts.Listen = "127.0.0.1:0"
	opts.Log = slog.New(slog.DiscardHandler)
	s, err := New(src, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Apply(src.engine)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, "http://" + s.Addr().String()
}

func do(t *testing.T, method, url, bearer string, body io.Reader) (int, map[string]any, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: content type %q", method, url, ct)
	}
	var obj map[string]any
	json.Unmarshal(raw, &obj)
	return resp.StatusCode, obj, raw
}

func euWestServed(t *testing.T, e *gslb.Engine) bool {
	t.Helper()
	rec := e.Records("app.example.test.")[0]
	c := gslb.Client{Addr: netip.MustParseAddr("198.51.100.0"), Prefix: 24, Located: true, Region: "eu-west", NetworkBits: 24}
	return e.Decide(rec, &c, nil).Pool.Region.Name == "eu-west"
}

func TestReads(t *testing.T) {
	src := quickstart(t)
	_, base := start(t, src, Options{OpenReads: true})
	tests := []struct {
		path string
		code int
		want string // a fragment of the body
	}{
		{"/healthz", 200, `"status": "ok"`},
		{"/readyz", 503, `"not ready"`},
		{"/api/v1/regions", 200, `"name": "ap-northeast"`},
		{"/api/v1/targets", 200, `"id": "eu-west/198.51.100.100"`},
		{"/api/v1/records", 200, `"policy": "geo"`},
		{"/api/v1/zones", 200, `"serial": 2026112501`},
		{"/api/v1/explain?name=app.example.test&client=198.51.100.0/24", 200, `"target_policy": "all"`},
		{"/api/v1/explain?name=app.example.test", 400, `needs name and client`},
		{"/api/v1/explain?name=app.example.test&client=banana", 400, `client:`},
		{"/api/v1/explain?name=app.example.test&client=1.2.3.4&type=BOGUS", 400, `not a record type`},
		{"/api/v1/explain?name=www.example.test&client=1.2.3.4", 404, `not a dynamic record`},
		{"/api/v1/nothing", 404, `no such endpoint`},
	}
	for _, tt := range tests {
		code, _, raw := do(t, "GET", base+tt.path, "", nil)
		if code != tt.code || !strings.Contains(string(raw), tt.want) {
			t.Errorf("GET %s: %d %s, want %d with %q", tt.path, code, raw, tt.code, tt.want)
		}
	}
	src.ready.Store(true)
	if code, _, _ := do(t, "GET", base+"/readyz", "", nil); code != 200 {
		t.Errorf("readyz when ready: %d", code)
	}
}

func TestClosedReads(t *testing.T) {
	_, base := start(t, quickstart(t), Options{Token: []byte(token)})
	if code, _, _ := do(t, "GET", base+"/api/v1/regions", "", nil); code != 401 {
		t.Errorf("closed reads without token: %d, want 401", code)
	}
	if code, _, _ := do(t, "GET", base+"/api/v1/regions", token, nil); code != 200 {
		t.Errorf("closed reads with token: %d, want 200", code)
	}
	if code, _, _ := do(t, "GET", base+"/healthz", "", nil); code != 200 {
		t.Errorf("healthz stays open: %d", code)
	}
}

func TestDrainNeedsToken(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	src := quickstart(t)
	_, base := start(t, src, Options{OpenReads: true, Token: []byte(token), StateFile: state})
	for _, bearer := range []string{"", "wrong-token-of-some-length"} {
		code, obj, _ := do(t, "POST", base+"/api/v1/regions/eu-west/drain", bearer, nil)
		if code != 401 || obj["error"] == nil {
			t.Errorf("bearer %q: %d %v, want 401 with an error", bearer, code, obj)
		}
	}
	if !euWestServed(t, src.engine) {
		t.Fatal("a refused change drained the region")
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("a refused change wrote the state file: %v", err)
	}
	// No token configured: changes are off altogether.
	_, base2 := start(t, quickstart(t), Options{OpenReads: true})
	if code, _, _ := do(t, "POST", base2+"/api/v1/regions/eu-west/drain", token, nil); code != 403 {
		t.Errorf("without admin.token_file: %d, want 403", code)
	}
}

func TestDrainPersists(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	src := quickstart(t)
	_, base := start(t, src, Options{OpenReads: true, Token: []byte(token), StateFile: state})

	for _, tt := range []struct {
		method, path string
		code         int
	}{
		{"POST", "/api/v1/regions/mars/drain", 404},
		{"POST", "/api/v1/targets/eu-west/10.9.9.9/drain", 404},
		{"POST", "/api/v1/regions/eu-west/drain", 200},
		{"POST", "/api/v1/targets/us-east/192.0.2.100/drain", 200},
	} {
		if code, obj, _ := do(t, tt.method, base+tt.path, token, nil); code != tt.code {
			t.Errorf("%s %s: %d %v, want %d", tt.method, tt.path, code, obj, tt.code)
		}
	}
	if euWestServed(t, src.engine) {
		t.Fatal("eu-west still answers after its drain")
	}
	// A restart: a new server over the same state file, a new engine.
	fresh := quickstart(t)
	s2, err := New(fresh, Options{StateFile: state, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s2.Apply(fresh.engine)
	regions, targets := fresh.engine.Drains()
	if !regions["eu-west"] || !targets["us-east/192.0.2.100"] {
		t.Fatalf("after restart: drained regions %v targets %v", regions, targets)
	}
	// Restore, and the file says so.
	if code, _, _ := do(t, "DELETE", base+"/api/v1/regions/eu-west/drain", token, nil); code != 200 {
		t.Fatalf("restore: %d", code)
	}
	if !euWestServed(t, src.engine) {
		t.Fatal("eu-west not back after restore")
	}
	o, err := loadState(state)
	if err != nil || len(o.Regions) != 0 || len(o.Targets) != 1 {
		t.Fatalf("state after restore: %+v %v", o, err)
	}
}

func TestReloadEndpoint(t *testing.T) {
	src := quickstart(t)
	_, base := start(t, src, Options{OpenReads: true, Token: []byte(token)})
	if code, _, _ := do(t, "POST", base+"/api/v1/reload", "", nil); code != 401 {
		t.Errorf("reload without token: %d, want 401", code)
	}
	if code, obj, _ := do(t, "POST", base+"/api/v1/reload", token, nil); code != 200 || obj["status"] != "reloaded" {
		t.Errorf("reload: %d %v", code, obj)
	}
	src.reloadErr = errors.New("meridian.toml:3: server.listen: bad")
	code, obj, _ := do(t, "POST", base+"/api/v1/reload", token, nil)
	if code != 422 || !strings.Contains(obj["error"].(string), "server.listen") {
		t.Errorf("failed reload: %d %v, want 422 naming the reason", code, obj)
	}
}

func TestWeights(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	src := quickstart(t)
	_, base := start(t, src, Options{OpenReads: true, Token: []byte(token), StateFile: state})
	pool := base + "/api/v1/records/app.example.test/A/pools/eu-west/weight"
	tests := []struct {
		method, url, body string
		code              int
	}{
		{"PUT", pool, `{"weight": 25}`, 200},
		{"PUT", pool, `{"weight": -1}`, 400},
		{"PUT", pool, `{"weight": 2000000}`, 400},
		{"PUT", pool, `{"wait": 5}`, 400},
		{"PUT", pool, `not json`, 400},
		{"PUT", base + "/api/v1/records/app.example.test/A/pools/mars/weight", `{"weight": 1}`, 404},
		{"PUT", base + "/api/v1/records/nope.example.test/A/pools/eu-west/weight", `{"weight": 1}`, 404},
		{"PUT", base + "/api/v1/targets/us-east/192.0.2.100/weight", `{"weight": 0}`, 200},
		{"PUT", base + "/api/v1/targets/us-east/10.0.0.1/weight", `{"weight": 0}`, 404},
	}
	for _, tt := range tests {
		code, obj, _ := do(t, tt.method, tt.url, token, strings.NewReader(tt.body))
		if code != tt.code {
			t.Errorf("%s %s %s: %d %v, want %d", tt.method, tt.url, tt.body, code, obj, tt.code)
		}
	}
	// The weights are in the records view and the state file.
	_, _, raw := do(t, "GET", base+"/api/v1/records", "", nil)
	if !strings.Contains(string(raw), `"weight": 25`) {
		t.Errorf("records do not show the new weight:\n%s", raw)
	}
	o, err := loadState(state)
	if err != nil || o.PoolWeights["app.example.test./A/eu-west"] != 25 || o.TargetWeights["us-east/192.0.2.100"] != 0 {
		t.Fatalf("state %+v %v", o, err)
	}
	// A restart applies them to a new engine.
	fresh := quickstart(t)
	s2, err := New(fresh, Options{StateFile: state, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s2.Apply(fresh.engine)
	rec := fresh.engine.Records("app.example.test.")[0]
	for _, p := range fresh.engine.Pools(rec) {
		if p.Pool == "eu-west" && p.Weight != 25 {
			t.Errorf("after restart eu-west weight %d", p.Weight)
		}
		if p.Pool == "us-east" && p.Usable != 1 {
			t.Errorf("after restart us-east has %d usable targets, want 1 (one at weight 0)", p.Usable)
		}
	}
	// Rollback: DELETE restores the configured weight.
	code, obj, _ := do(t, "DELETE", pool, token, nil)
	if code != 200 || obj["new"] != "configured" || obj["old"] != float64(25) {
		t.Fatalf("rollback: %d %v", code, obj)
	}
	if o, _ := loadState(state); len(o.PoolWeights) != 0 {
		t.Fatalf("state after rollback %+v", o)
	}
}

// TestStrictBodies sends the weight endpoint what encoding/json would take
// quietly: each is refused with a 400 that says what is wrong, and the
// weight in force does not move.
func TestStrictBodies(t *testing.T) {
	src := quickstart(t)
	_, base := start(t, src, Options{OpenReads: true, Token: []byte(token)})
	pool := base + "/api/v1/records/app.example.test/A/pools/eu-west/weight"
	before := poolWeight(src.engine, "eu-west")
	tests := []struct {
		name, body, want string
	}{
		{"duplicate key", `{"weight": 5, "weight": 7}`, `key "weight" appears twice`},
		{"trailing data", `{"weight": 5} {"weight": 7}`, "trailing data after the JSON object"},
		{"trailing garbage", `{"weight": 5}x`, "trailing data"},
		{"key in another case", `{"Weight": 5}`, `unknown key "Weight": keys are case-sensitive, did you mean "weight"?`},
		{"unknown key", `{"wait": 5}`, `unknown key "wait"`},
		{"null body", `null`, "must be a JSON object, not null"},
		{"null value", `{"weight": null}`, `key "weight" is null`},
		{"array", `[5]`, "must be a JSON object, not an array"},
		{"empty", ``, "the body is empty"},
		{"wrong type", `{"weight": "5"}`, `key "weight": want a whole number, not a JSON string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, obj, raw := do(t, "PUT", pool, token, strings.NewReader(tt.body))
			msg, _ := obj["error"].(string)
			if code != http.StatusBadRequest || !strings.Contains(msg, tt.want) {
				t.Errorf("%s: %d %s, want 400 saying %q", tt.body, code, raw, tt.want)
			}
		})
	}
	if w := poolWeight(src.engine, "eu-west"); w != before {
		t.Errorf("eu-west weight %d after refused bodies, want %d", w, before)
	}
	if code, obj, _ := do(t, "PUT", pool, token, strings.NewReader(`{"weight": 5}`)); code != 200 || obj["new"] != float64(5) {
		t.Errorf("a good body after the bad ones: %d %v", code, obj)
	}
}

// TestOpenReadsWarning: on loopback, nothing is said at start, with reads
// open or not (beyond loopback, see adminhttp's TestWarnOpenReads: tests
// bind loopback only).
func TestOpenReadsWarning(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:0", "[::1]:0"} {
		// Start logs the warning before it returns, and nothing else
		// here logs, so the buffer needs no lock.
		var buf strings.Builder
		s, err := New(quickstart(t), Options{Listen: listen, OpenReads: true, Log: slog.New(slog.NewTextHandler(&buf, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Logf("%s: %v", listen, err) // no IPv6 loopback here
			continue
		}
		s.Shutdown(context.Background())
		if strings.Contains(buf.String(), "open_reads") {
			t.Errorf("listen %s: warned on loopback:\n%s", listen, buf.String())
		}
	}
}

func poolWeight(e *gslb.Engine, pool string) int {
	for _, p := range e.Pools(e.Records("app.example.test.")[0]) {
		if p.Pool == pool {
			return int(p.Weight)
		}
	}
	return -1
}
