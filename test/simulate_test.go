package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// guardTables are the guards the simulation tests serve with.
const guardTables = `
[[guard]]
name = "app-two-regions"
record = "app.example.test"
min_regions = 2

[[guard]]
name = "us-east-stays"
never_drain = "us-east"
`

// startWhatIf serves the quickstart with every target up (checked on
// ports the test listens on), changes allowed with adminToken, and the
// guards above; it returns the server, the admin API's URL, the token
// file and the health ports.
func startWhatIf(t *testing.T) (*instance, string, string, []*healthPort) {
	t.Helper()
	ports := newHealthPorts(t, quickstartTargets)
	checks := withCheckPorts(t, ports)
	s := startQuickstartWith(t, func(config string) string {
		config = replaceOnce(t, checks(config), `listen = "127.0.0.1:0"`, "listen = \"127.0.0.1:0\"\ntoken_file = \"token\"")
		return config + guardTables
	}, func(dir string) {
		writeFile(t, filepath.Join(dir, "token"), adminToken+"\n")
	})
	waitChecked(t, s, ports)
	return s, "http://" + s.waitLog(t, "admin API", 0).str("addr"), filepath.Join(s.dir, "token"), ports
}

// answerOf is the ANSWER section's addresses for a client subnet.
func answerOf(t *testing.T, s *instance, subnet string) []string {
	t.Helper()
	var out []string
	for _, rr := range s.dig(t, "app.example.test", "A", "+norec", "+subnet="+subnet).sections["ANSWER"] {
		f := strings.Fields(rr)
		out = append(out, f[len(f)-1])
	}
	return out
}

// TestSimulate runs `meridian simulate` against a running quickstart and
// against its file: with eu-west down, eu-west's row moves to us-east,
// and nothing served changes.
func TestSimulate(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	s, api, _, _ := startWhatIf(t)
	before := answerOf(t, s, euWest.subnet)
	if !sameRecords(before, euWest.vips) {
		t.Fatalf("eu-west's client gets %v before, want %v", before, euWest.vips)
	}
	want := "app.example.test A (geo): 1 of 3 clients move\n  eu-west -> us-east (fallback): 1 client\n    198.51.100.0/24\n"
	for name, args := range map[string][]string{
		"server": {"simulate", "-server", api, "-down", "eu-west"},
		"config": {"simulate", "-config", s.config, "-down", "eu-west"},
	} {
		out, errOut, code := runMeridian(t, args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("%s: exit %d, output lacks %q:\n%s%s", name, code, want, out, errOut)
		}
		if !strings.Contains(out, "  eu-west        33.3%    0.0%\n  us-east        33.3%   66.7%\n") {
			t.Errorf("%s: shares not in the output:\n%s", name, out)
		}
	}
	out, _, code := runMeridian(t, "simulate", "-server", api, "-down", "eu-west", "-json")
	var rep struct {
		Records []struct {
			Name  string
			Moves []struct {
				From, To struct{ Region, Outcome string }
				Examples []string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("-json: exit %d, %v:\n%s", code, err, out)
	}
	if m := rep.Records[0].Moves; len(m) != 1 || m[0].From.Region != "eu-west" || m[0].To.Region != "us-east" || m[0].Examples[0] != "198.51.100.0/24" {
		t.Errorf("-json moves = %+v", m)
	}
	_, errOut, code := runMeridian(t, "simulate", "-server", api, "-down", "eu-wset")
	if code != 1 || !strings.Contains(errOut, `"eu-wset" is neither a region nor a target; regions: ap-northeast, eu-west, us-east`) {
		t.Errorf("unknown region: exit %d, %s", code, errOut)
	}
	_, errOut, code = runMeridian(t, "simulate", "-server", api, "-load", "mars=50")
	if code != 1 || !strings.Contains(errOut, `no region "mars"; regions: ap-northeast, eu-west, us-east`) {
		t.Errorf("-load, unknown region: exit %d, %s", code, errOut)
	}
	if after := answerOf(t, s, euWest.subnet); !sameRecords(after, before) {
		t.Errorf("a simulation changed the answer: %v, was %v", after, before)
	}
}

// TestGuardsAndDryRun: a dry run changes nothing; a drain that breaks a
// guard is refused (409, naming it) without force and made with it,
// audited; health breaking a guard does not stop failover.
func TestGuardsAndDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	s, api, _, ports := startWhatIf(t)
	drain := func(region, query string) (int, string) {
		return adminBody(t, "POST", api+"/api/v1/regions/"+region+"/drain"+query, adminToken, "")
	}

	// A dry run, with no token (a read): the difference, nothing changed.
	code, body := adminBody(t, "POST", api+"/api/v1/regions/eu-west/drain?dry_run=true", "", "")
	if code != 200 || !strings.Contains(body, `"dry_run": true`) || !strings.Contains(body, `"198.51.100.0/24"`) {
		t.Fatalf("dry run: %d %s", code, body)
	}
	if got := answerOf(t, s, euWest.subnet); !sameRecords(got, euWest.vips) {
		t.Fatalf("after a dry run eu-west's client gets %v", got)
	}
	if _, regions := adminCall(t, "GET", api+"/api/v1/regions", ""); strings.Contains(regions, `"drained": true`) {
		t.Fatalf("a dry run drained: %s", regions)
	}
	code, body = adminBody(t, "POST", api+"/api/v1/simulate", "", `{"drain": ["eu-west", "ap-northeast"]}`)
	if code != 200 || !strings.Contains(body, `"guard": "app-two-regions"`) {
		t.Errorf("simulate: %d, want the broken guard in %s", code, body)
	}
	if code, body = adminBody(t, "POST", api+"/api/v1/simulate", "", `{"down": ["mars"]}`); code != 404 || !strings.Contains(body, "regions: ap-northeast, eu-west, us-east") {
		t.Errorf("unknown region: %d %s", code, body)
	}

	if code, body = drain("eu-west", ""); code != 200 {
		t.Fatalf("drain eu-west: %d %s", code, body)
	}
	code, body = drain("ap-northeast", "")
	if code != 409 || !strings.Contains(body, `refused: guard \"app-two-regions\": app.example.test A would keep 1 region(s) in rotation (us-east), fewer than 2`) {
		t.Fatalf("drain ap-northeast past the guard: %d %s", code, body)
	}
	if got := answerOf(t, s, apNortheast.subnet); !sameRecords(got, apNortheast.vips) {
		t.Fatalf("a refused drain moved ap-northeast's client to %v", got)
	}
	code, body = drain("us-east", "")
	if code != 409 || !strings.Contains(body, `guard \"us-east-stays\": region us-east is never drained through the API`) {
		t.Errorf("drain us-east: %d %s", code, body)
	}
	if code, body = drain("ap-northeast", "?force=true"); code != 200 {
		t.Fatalf("forced drain: %d %s", code, body)
	}
	if got := answerOf(t, s, apNortheast.subnet); !sameRecords(got, usEast.vips) {
		t.Errorf("after the forced drain ap-northeast's client gets %v, want us-east's", got)
	}
	if e := s.waitLog(t, "audit: change forced past guards", 0); !strings.Contains(e.str("path"), "ap-northeast") {
		t.Errorf("forced change audited as %v", e)
	}
	if _, page := adminCall(t, "GET", api+"/metrics", ""); metric(page, `meridian_guard_broken{guard="app-two-regions"}`) != 1 ||
		metric(page, `meridian_admin_changes_total{action="POST",kind="region",result="refused"}`) != 2 {
		t.Errorf("metrics after the refusals and the forced drain:\n%s", grepLines(page, "guard", "admin_changes"))
	}

	// Undrain both, then let health take eu-west and ap-northeast out:
	// failover goes on, the log and explain say which guard broke.
	for _, r := range []string{"eu-west", "ap-northeast"} {
		if code, body := adminBody(t, "DELETE", api+"/api/v1/regions/"+r+"/drain", adminToken, ""); code != 200 {
			t.Fatalf("undrain %s: %d %s", r, code, body)
		}
	}
	ports[euWest.check].down(t)
	ports[apNortheast.check].down(t)
	e := s.waitLog(t, "guard broken by health; failover goes on", 0)
	if e.str("guard") != "app-two-regions" {
		t.Errorf("log names guard %q", e.str("guard"))
	}
	if got := answerOf(t, s, euWest.subnet); !sameRecords(got, usEast.vips) {
		t.Errorf("health took eu-west out past the guard; its client gets %v, want us-east's (failover goes on)", got)
	}
	if _, ex := adminCall(t, "GET", api+"/api/v1/explain?name=app.example.test&client=198.51.100.7", ""); !strings.Contains(ex, `"guard": "app-two-regions"`) {
		t.Errorf("explain does not name the broken guard:\n%s", ex)
	}
}

func grepLines(page string, words ...string) string {
	var out []string
	for _, l := range strings.Split(page, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) && !strings.HasPrefix(l, "#") {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestDrill drains eu-west for real for a few seconds, records the
// answers, restores; and restores when interrupted.
func TestDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	s, api, tokenFile, _ := startWhatIf(t)
	out, errOut, code := runMeridian(t, "simulate", "-drill", "-server", api, "-token-file", tokenFile, "-drain", "eu-west", "-duration", "2s", "-interval", "1s")
	if code != 0 {
		t.Fatalf("drill: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"before    app.example.test A: ", "drained   app.example.test A: us-east 66.7%, ap-northeast 33.3%", "restored  app.example.test A: "} {
		if !strings.Contains(out, want) {
			t.Errorf("drill output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "drill: restored eu-west") {
		t.Errorf("drill stderr: %s", errOut)
	}
	if got := answerOf(t, s, euWest.subnet); !sameRecords(got, euWest.vips) {
		t.Fatalf("after the drill eu-west's client gets %v", got)
	}

	// Interrupted: SIGINT once it has drained, and it restores.
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "simulate", "-drill", "-server", api, "-token-file", tokenFile, "-drain", "eu-west", "-duration", "1h")
	var stderr testkit.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(reloadTimeout)
	for !strings.Contains(stderr.String(), "drill: drained eu-west") {
		if time.Now().After(deadline) {
			t.Fatalf("the drill did not drain: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := answerOf(t, s, euWest.subnet); !sameRecords(got, usEast.vips) {
		t.Errorf("during the drill eu-west's client gets %v, want us-east's", got)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != 130 || !strings.Contains(stderr.String(), "drill: restored eu-west") {
		t.Errorf("interrupted drill: %v, exit %d\n%s", err, cmd.ProcessState.ExitCode(), stderr.String())
	}
	if got := answerOf(t, s, euWest.subnet); !sameRecords(got, euWest.vips) {
		t.Errorf("after the interrupted drill eu-west's client gets %v", got)
	}
}

// storeRecord follows load, failing over from us-east to eu-west; its
// targets need no checks.
const storeRecord = `
[[record]]
name = "store.example.test"
type = "A"
ttl = 30
policy = "failover"
select = "all"
load = "headroom"
[[record.pool]]
region = "us-east"
check = { type = "none" }
[[record.pool.target]]
address = "192.0.2.120"
[[record.pool]]
region = "eu-west"
check = { type = "none" }
[[record.pool.target]]
address = "198.51.100.120"
`

// TestSimulateLoad runs `meridian simulate -load` on a configuration
// with a record that follows load, from the file, from the running node
// (-server) and over the admin API:
// at max the region's clients move to the other, half way from target to
// max part of them; the records that do not follow load are said to be
// unchanged; bad loads are refused.
func TestSimulateLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	s := startQuickstartWith(t, func(config string) string { return config + storeRecord })
	api := "http://" + s.waitLog(t, "admin API", 0).str("addr")
	var clients []string
	for i := range 64 {
		clients = append(clients, fmt.Sprintf("10.0.%d.0/24", i))
	}
	clientsFile := filepath.Join(s.dir, "clients.txt")
	writeFile(t, clientsFile, strings.Join(clients, "\n")+"\n")
	tests := []struct {
		load string
		want []string
	}{
		{"us-east=100", []string{
			"load: us-east reports 100% of max_load; shares once the load controller has settled:\n" +
				"  store.example.test/A/us-east keeps 0% of its clients (target assumed at 80% of max: no load reports)\n" +
				"  unchanged, not following load: app.example.test/A, canary.example.test/A\n",
			"store.example.test A (failover): 64 of 64 clients move\n  us-east -> eu-west: 64 clients\n",
			"app.example.test A (geo): no change\n"}},
		{"us-east=90", []string{"store.example.test/A/us-east keeps 50% of its clients",
			"store.example.test A (failover): 30 of 64 clients move\n  us-east -> eu-west: 30 clients\n"}},
		{"us-east=60", []string{"keeps 100% of its clients", "store.example.test A (failover): no change\n"}},
		{"ap-northeast=500", []string{`load: ap-northeast reports 500% of max_load: no record with a pool in ap-northeast follows load (load = "headroom"): nothing changes`}},
	}
	for _, tc := range tests {
		for _, from := range [][]string{{"-config", s.config}, {"-server", api}} {
			out, errOut, code := runMeridian(t, append([]string{"simulate", "-clients", clientsFile, "-load", tc.load}, from...)...)
			for _, want := range tc.want {
				if code != 0 || !strings.Contains(out, want) {
					t.Errorf("%s -load %s: exit %d, output lacks %q:\n%s%s", from[0], tc.load, code, want, out, errOut)
				}
			}
		}
	}
	_, errOut, code := runMeridian(t, "simulate", "-config", s.config, "-load", "us-east=lots")
	if code != 1 || !strings.Contains(errOut, `load "us-east=lots": PCT must be a number from 0 to 1000`) {
		t.Errorf("-load us-east=lots: exit %d, %s", code, errOut)
	}
	checkSimulateLoadAPI(t, api, clients)
}

// checkSimulateLoadAPI: POST /api/v1/simulate with a load answers 200
// with the moves and the settled share, 404 naming the regions for an
// unknown one and 400 for a PCT out of range.
func checkSimulateLoadAPI(t *testing.T, api string, clients []string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"load": []string{"us-east=100"}, "clients": clients})
	code, out := adminBody(t, "POST", api+"/api/v1/simulate", "", string(body))
	var rep struct {
		Records []struct {
			Name  string
			Moves []struct {
				From, To struct{ Region string }
				Clients  int
			}
		}
		Load []struct {
			Region string
			Pools  []struct{ Share float64 }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 200 || err != nil {
		t.Fatalf("simulate with load: %d, %v: %s", code, err, out)
	}
	for _, r := range rep.Records {
		moved := len(r.Moves) == 1 && r.Moves[0].From.Region == "us-east" && r.Moves[0].To.Region == "eu-west" && r.Moves[0].Clients == 64
		if (r.Name == "store.example.test.") != moved {
			t.Errorf("%s moves %+v", r.Name, r.Moves)
		}
	}
	if len(rep.Load) != 1 || rep.Load[0].Region != "us-east" || len(rep.Load[0].Pools) != 1 || rep.Load[0].Pools[0].Share != 0 {
		t.Errorf("load = %+v, want us-east's pool settled at share 0", rep.Load)
	}
	for body, want := range map[string]struct {
		code int
		text string
	}{
		`{"load": ["mars=50"]}`:      {404, "regions: ap-northeast, eu-west, us-east"},
		`{"load": ["us-east=2000"]}`: {400, "PCT must be a number from 0 to 1000"},
	} {
		if code, out := adminBody(t, "POST", api+"/api/v1/simulate", "", body); code != want.code || !strings.Contains(out, want.text) {
			t.Errorf("%s: %d %s, want %d naming %q", body, code, out, want.code, want.text)
		}
	}
}
