package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// clusterTimeout bounds a wait for the cluster to agree on a change. The
// checks run every 300 ms and decide on one result; the agents report a
// change at once; a killed agent is declared dead by memberlist in about
// five seconds.
const clusterTimeout = 30 * time.Second

// vantageAddrs are the source addresses of the five probe agents: every
// 127.0.0.0/8 address is on the loopback interface, so each agent checks
// from its own and the targets can tell them apart.
var vantageAddrs = []string{"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14", "127.0.0.15"}

// target is an HTTP health endpoint that answers 503 to the source
// addresses told to fail, and 200 to the others.
type target struct {
	mu      sync.Mutex
	failFor map[string]bool
	addr    string
	srv     *http.Server
}

func newTarget(t *testing.T) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{failFor: map[string]bool{}, addr: ln.Addr().String()}
	tg.serve(ln)
	t.Cleanup(tg.stop)
	return tg
}

func (tg *target) serve(ln net.Listener) {
	tg.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		tg.mu.Lock()
		fail := tg.failFor[host]
		tg.mu.Unlock()
		if fail {
			http.Error(w, "failing for "+host, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})}
	go tg.srv.Serve(ln)
}

// failFrom makes the target fail for exactly these sources.
func (tg *target) failFrom(sources ...string) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	tg.failFor = map[string]bool{}
	for _, s := range sources {
		tg.failFor[s] = true
	}
}

func (tg *target) stop() {
	if tg.srv != nil {
		tg.srv.Close()
		tg.srv = nil
	}
}

func (tg *target) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", tg.addr)
	if err != nil {
		t.Fatalf("listen on %s again: %v", tg.addr, err)
	}
	tg.serve(ln)
}

// agent is one `meridian probe` process.
type agent struct {
	name   string
	cmd    *exec.Cmd
	stderr *testkit.Buffer
	done   chan struct{}
}

// startAgent starts a probe agent on source; keyFile "" starts it without a key.
func startAgent(t *testing.T, name, source, keyFile string, seeds []string) *agent {
	t.Helper()
	port := testkit.FreePort(t, source)
	a := &agent{name: name, stderr: &testkit.Buffer{}, done: make(chan struct{})}
	args := []string{"probe", "-vantage", name, "-region", "test",
		"-seeds", strings.Join(seeds, ","), "-bind", net.JoinHostPort(source, strconv.Itoa(port)),
		"-source", source, "-refresh", "500ms", "-log-format", "json",
		"-admin", net.JoinHostPort(source, "0")}
	if keyFile != "" {
		args = append(args, "-key-file", keyFile)
	}
	a.cmd = exec.Command(binary, args...)
	a.cmd.Stdout, a.cmd.Stderr = a.stderr, a.stderr
	a.cmd.WaitDelay = exitTimeout
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = a.cmd.Wait()
		close(a.done)
	}()
	t.Cleanup(func() {
		a.kill(t)
		if t.Failed() {
			t.Logf("agent %s stderr:\n%s", name, a.stderr.String())
		}
	})
	return a
}

// api is the agent's admin API, from its log.
func (a *agent) api(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		for _, line := range strings.Split(a.stderr.String(), "\n") {
			var e logEntry
			if json.Unmarshal([]byte(line), &e) == nil && e.str("msg") == "agent API" {
				return "http://" + e.str("addr")
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s logged no API address", a.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *agent) kill(t *testing.T) {
	t.Helper()
	select {
	case <-a.done:
		return
	default:
	}
	_ = a.cmd.Process.Kill()
	select {
	case <-a.done:
	case <-time.After(exitTimeout):
		t.Errorf("agent %s still running after SIGKILL", a.name)
	}
}

// dnsNode is one `meridian serve` of the cluster.
type dnsNode struct {
	*instance
	gossip string // host:port
}

func (n *dnsNode) api(t *testing.T) string {
	t.Helper()
	return "http://" + n.waitLog(t, "admin API", 0).str("addr")
}

// apiTarget is the part of /api/v1/targets the test reads.
type apiTarget struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	VotesUp   int    `json:"votes_up"`
	VotesDown int    `json:"votes_down"`
	Stale     bool   `json:"stale"`
	Vantages  []struct {
		Vantage string `json:"vantage"`
		State   string `json:"state"`
		Fresh   bool   `json:"fresh"`
	} `json:"vantages"`
}

func (n *dnsNode) target(t *testing.T, id string) apiTarget {
	t.Helper()
	code, body := adminCall(t, "GET", n.api(t)+"/api/v1/targets", "")
	if code != http.StatusOK {
		t.Fatalf("targets: %d %s", code, body)
	}
	var all []apiTarget
	if err := json.Unmarshal([]byte(body), &all); err != nil {
		t.Fatal(err)
	}
	for _, tg := range all {
		if tg.ID == id {
			return tg
		}
	}
	t.Fatalf("no target %s in %s", id, body)
	return apiTarget{}
}

// startDNSNode serves the quickstart as a cluster member whose checks are
// HTTP checks of targets. Each extra is a line of [cluster], or one of:
// gossip=HOST:PORT (its gossip address), check=... (the pools' check, in
// place of one every 300 ms that decides on one result), fail=MODE (of
// app.example.test).
func startDNSNode(t *testing.T, name, keyFile string, seeds []string, targets []*target, extra ...string) *dnsNode {
	t.Helper()
	gossip := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	check := `check = { type = "http", path = "/health", interval = "300ms", timeout = "250ms", rise = 1, fall = 1 }`
	var edits []func(string) string
	var lines []string
	for _, e := range extra {
		switch {
		case strings.HasPrefix(e, "gossip="):
			gossip = strings.TrimPrefix(e, "gossip=")
		case strings.HasPrefix(e, "check="):
			check = strings.TrimPrefix(e, "check=")
		case strings.HasPrefix(e, "fail="):
			// app.example.test's failure mode, when no pool is eligible.
			mode := strings.TrimPrefix(e, "fail=")
			edits = append(edits, func(c string) string {
				return replaceOnce(t, c, "\n[record.geo]\n", fmt.Sprintf("\nfail = %q\n[record.geo]\n", mode))
			})
		default:
			lines = append(lines, e)
		}
	}
	if len(seeds) == 0 {
		seeds = []string{gossip}
	}
	quoted := make([]string, len(seeds))
	for i, s := range seeds {
		quoted[i] = strconv.Quote(s)
	}
	inst := startQuickstartWith(t, func(config string) string {
		config = replaceOnce(t, config, `listen = "127.0.0.1:0"`,
			"listen = \"127.0.0.1:0\"\ntoken_file = \"token\"\nstate_file = \"admin-state.json\"")
		const tcp = `check = { type = "tcp", interval = "1s", timeout = "500ms", rise = 2, fall = 2 }`
		config = strings.ReplaceAll(config, tcp, check)
		for _, edit := range edits {
			config = edit(config)
		}
		for i, tg := range targets {
			config = replaceOnce(t, config, fmt.Sprintf(`check_address = "127.0.0.1:%d"`, quickstartCheckPort+i), fmt.Sprintf("check_address = %q", tg.addr))
		}
		config = replaceOnce(t, config, `identity = "e2e-node"`, fmt.Sprintf("identity = %q", name))
		return config + fmt.Sprintf(`
[cluster]
name = %q
bind = %q
seeds = [%s]
key_file = %q
stale_after = "3s"
%s
`, name, gossip, strings.Join(quoted, ", "), keyFile, strings.Join(lines, "\n"))
	}, func(dir string) {
		writeFile(t, filepath.Join(dir, "token"), adminToken+"\n")
	})
	return &dnsNode{instance: inst, gossip: gossip}
}

// vips returns the addresses a node answers for a us-east client.
func vips(t *testing.T, n *dnsNode) []string {
	t.Helper()
	r := n.dig(t, "+norec", "+subnet="+usEast.subnet, "app.example.test", "A")
	got := addresses(r)
	slices.Sort(got)
	return got
}

// waitVIPs polls every live node until each answers want.
func waitVIPs(t *testing.T, what string, nodes []*dnsNode, want ...string) {
	t.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for _, n := range nodes {
		for {
			got := vips(t, n)
			if slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: a node answers %v, want %v", what, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// waitVotes polls every node's admin API until target id has these votes.
func waitVotes(t *testing.T, what string, nodes []*dnsNode, id string, up, down int) {
	t.Helper()
	deadline := time.Now().Add(clusterTimeout)
	for _, n := range nodes {
		for {
			tg := n.target(t, id)
			if tg.VotesUp == up && tg.VotesDown == down {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s has votes %d up / %d down, want %d / %d: %+v", what, id, tg.VotesUp, tg.VotesDown, up, down, tg)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestCluster runs 3 DNS nodes and 5 probe agents as real processes on
// loopback, in front of real HTTP targets, and moves one target through
// the cases of the quorum.
func TestCluster(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	writeFile(t, keyFile, "# gossip key\n"+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))+"\n")
	var targets []*target
	for range quickstartTargets {
		targets = append(targets, newTarget(t))
	}
	a := targets[0] // us-east/192.0.2.100
	const aID = "us-east/192.0.2.100"
	both := []string{"192.0.2.100", "192.0.2.101"}
	onlyB := []string{"192.0.2.101"}

	dns1 := startDNSNode(t, "dns1", keyFile, nil, targets)
	dns2 := startDNSNode(t, "dns2", keyFile, []string{dns1.gossip}, targets)
	dns3 := startDNSNode(t, "dns3", keyFile, []string{dns1.gossip}, targets)
	nodes := []*dnsNode{dns1, dns2, dns3}
	seeds := []string{dns1.gossip, dns2.gossip, dns3.gossip}
	var agents []*agent
	for i, src := range vantageAddrs {
		agents = append(agents, startAgent(t, fmt.Sprintf("v%d", i+1), src, keyFile, seeds))
	}

	waitVotes(t, "all five vantages report", nodes, aID, 5, 0)
	for _, ag := range agents {
		code, body := adminCall(t, "GET", ag.api(t)+"/readyz", "")
		if code != http.StatusOK {
			t.Fatalf("agent %s /readyz: %d %s", ag.name, code, body)
		}
	}
	waitVIPs(t, "all healthy", nodes, both...)

	a.failFrom(vantageAddrs[:2]...)
	waitVotes(t, "failing for 2 of 5", nodes, aID, 3, 2)
	for _, n := range nodes {
		if got := vips(t, n); !slices.Equal(got, both) {
			t.Fatalf("failing for 2 of 5 vantages, a node answers %v, want %v", got, both)
		}
	}

	a.failFrom(vantageAddrs[:3]...)
	waitVIPs(t, "failing for 3 of 5", nodes, onlyB...)
	tg := dns2.target(t, aID)
	if tg.State != "down" || tg.VotesDown != 3 || len(tg.Vantages) != 5 {
		t.Fatalf("dns2's view of the target: %+v", tg)
	}

	a.failFrom()
	waitVIPs(t, "recovered", nodes, both...)
	a.stop()
	waitVIPs(t, "stopped entirely", nodes, onlyB...)
	waitVotes(t, "stopped entirely", nodes, aID, 0, 5)
	a.start(t)
	waitVIPs(t, "started again", nodes, both...)

	// Down for 3 of 5; then one of the three agents dies: 2 of 4 is not a
	// majority, and the target comes back.
	a.failFrom(vantageAddrs[:3]...)
	waitVIPs(t, "failing for 3 of 5 again", nodes, onlyB...)
	agents[0].kill(t)
	waitVotes(t, "an agent died", nodes, aID, 2, 2)
	waitVIPs(t, "quorum recomputed without the dead agent", nodes, both...)

	// A DNS node dies: the others keep answering alike.
	dns2.cmd.Process.Signal(syscall.SIGKILL)
	<-dns2.done
	a.failFrom(vantageAddrs[:4]...)
	waitVIPs(t, "with dns2 dead", []*dnsNode{dns1, dns3}, onlyB...)

	// dns2 comes back on the same addresses: it takes the cluster's state
	// in its join, before it answers, and converges with the others.
	if err := dns2.start(t); err != nil {
		t.Fatalf("restart dns2: %v\n%s", err, dns2.stderr.String())
	}
	waitVIPs(t, "dns2 rejoined", nodes, onlyB...)
	waitVotes(t, "dns2 rejoined", nodes, aID, 1, 3)
	code, body := adminCall(t, "GET", dns2.api(t)+"/readyz", "")
	if code != http.StatusOK {
		t.Fatalf("dns2 /readyz after rejoining: %d %s", code, body)
	}
	// The dead agent leaves the membership once memberlist's failure
	// detection gives up on it.
	want := []string{"dns1/dns", "dns2/dns", "dns3/dns", "v2/probe", "v3/probe", "v4/probe", "v5/probe"}
	deadline := time.Now().Add(clusterTimeout)
	for {
		code, body = adminCall(t, "GET", dns1.api(t)+"/api/v1/cluster", "")
		var cl struct {
			Joined  bool `json:"joined"`
			Members []struct {
				Name  string `json:"name"`
				Role  string `json:"role"`
				State string `json:"state"`
			} `json:"members"`
		}
		if err := json.Unmarshal([]byte(body), &cl); code != http.StatusOK || err != nil {
			t.Fatalf("cluster: %d %v %s", code, err, body)
		}
		var alive []string
		for _, m := range cl.Members {
			if m.State == "alive" {
				alive = append(alive, m.Name+"/"+m.Role)
			}
		}
		if cl.Joined && slices.Equal(alive, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dns1's live members: %v (joined %v), want %v", alive, cl.Joined, want)
		}
		time.Sleep(100 * time.Millisecond)
	}

	out, errOut, code := runMeridian(t, "status", "-admin", dns1.api(t))
	for _, want := range []string{"VOTES UP/DOWN", "1/3 (3 down to fail)", "cluster: node dns1, joined yes, quorum majority", "VANTAGE", "v5 "} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("meridian status (exit %d) lacks %q:\n%s%s", code, want, out, errOut)
		}
	}

	// What the operator watches: the verdict, the members, the vantages.
	_, page := adminCall(t, "GET", dns1.api(t)+"/metrics", "")
	for sample, want := range map[string]float64{
		`meridian_target_up{region="us-east",target="us-east/192.0.2.100"}`: 0,
		`meridian_target_up{region="us-east",target="us-east/192.0.2.101"}`: 1,
		`meridian_cluster_members{role="probe",state="alive"}`:              4,
		`meridian_cluster_members{role="dns",state="alive"}`:                3,
		`meridian_vantage_fresh_results{vantage="v2"}`:                      quickstartTargets,
		`meridian_vantage_suspect{vantage="v2"}`:                            0,
	} {
		if got := metric(page, sample); got != want {
			t.Errorf("dns1 /metrics: %s = %v, want %v", sample, got, want)
		}
	}
	if metric(page, `meridian_cluster_gossip_bytes_total{direction="received"}`) <= 0 {
		t.Errorf("dns1 received no gossip bytes, by its metrics")
	}

	// An override made on one node reaches every node's answers, and so
	// does its rollback made on another.
	if code, body := adminCall(t, "POST", dns3.api(t)+"/api/v1/regions/us-east/drain", adminToken); code != http.StatusOK {
		t.Fatalf("drain on dns3: %d %s", code, body)
	}
	waitVIPs(t, "us-east drained through dns3", nodes, "198.51.100.100")
	// Every node persists what it took from the cluster, so a restart
	// keeps it even with no peer to ask.
	for _, n := range []*dnsNode{dns1, dns2} {
		var st struct {
			Regions []string `json:"drained_regions"`
			Origin  string   `json:"origin"`
		}
		if err := json.Unmarshal([]byte(readFile(t, filepath.Join(n.dir, "admin-state.json"))), &st); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(st.Regions, []string{"us-east"}) || st.Origin != "dns3" {
			t.Errorf("%s's state file: %+v, want us-east drained by dns3", n.config, st)
		}
	}
	if code, body := adminCall(t, "DELETE", dns1.api(t)+"/api/v1/regions/us-east/drain", adminToken); code != http.StatusOK {
		t.Fatalf("undrain on dns1: %d %s", code, body)
	}
	waitVIPs(t, "us-east restored through dns1", nodes, onlyB...)
	for _, n := range nodes {
		noErrors(t, n.instance)
	}
}

// TestClusterJoinLater: a node whose seeds are all down serves anyway
// after join_timeout, is not ready, and becomes ready once a seed comes
// up and it joins.
func TestClusterJoinLater(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	writeFile(t, keyFile, base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))+"\n")
	var targets []*target
	for range quickstartTargets {
		targets = append(targets, newTarget(t))
	}
	seed := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	late := startDNSNode(t, "late", keyFile, []string{seed}, targets, `join_timeout = "300ms"`)
	if got := vips(t, late); len(got) == 0 {
		t.Fatal("a node that could not join does not answer")
	}
	if code, body := adminCall(t, "GET", late.api(t)+"/readyz", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before joining: %d %s, want 503", code, body)
	}
	late.waitLog(t, "no seed answered", 0)
	startDNSNode(t, "seed", keyFile, nil, targets, "gossip="+seed)
	deadline := time.Now().Add(clusterTimeout)
	for {
		code, _ := adminCall(t, "GET", late.api(t)+"/readyz", "")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node never became ready after its seed came up")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterKeyRotation follows docs/cluster.md's three reloads: add the new
// key, encrypt with it, retire the old; the cluster stays whole, and an
// agent that knows only the new key joins it.
func TestClusterKeyRotation(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "cluster.key")
	oldKey := base64.StdEncoding.EncodeToString([]byte("old-key-0123456789abcdef01234567"))
	newKey := base64.StdEncoding.EncodeToString([]byte("new-key-0123456789abcdef01234567"))
	writeFile(t, keyFile, oldKey+"\n")
	var targets []*target
	for range quickstartTargets {
		targets = append(targets, newTarget(t))
	}
	a := startDNSNode(t, "a", keyFile, nil, targets)
	b := startDNSNode(t, "b", keyFile, []string{a.gossip}, targets)
	for i, keys := range [][]string{{oldKey, newKey}, {newKey, oldKey}, {newKey}} {
		writeFile(t, keyFile, strings.Join(keys, "\n")+"\n")
		for _, n := range []*dnsNode{a, b} {
			n.signal(t, syscall.SIGHUP)
			n.waitLog(t, "reload: cluster keys changed", i)
		}
	}
	newOnly := filepath.Join(dir, "new.key")
	writeFile(t, newOnly, newKey+"\n")
	startAgent(t, "v1", vantageAddrs[0], newOnly, []string{a.gossip})
	waitVotes(t, "an agent with only the new key", []*dnsNode{a, b}, "us-east/192.0.2.100", 1, 0)
	for _, n := range []*dnsNode{a, b} {
		noErrors(t, n.instance)
	}
}

// TestClusterWrongKey starts a DNS node and probe agents with a wrong key
// and with none, as processes (issue 15, item 5). Each agent says at error
// why it cannot join and its /readyz fails with the reason; the node logs
// one line per agent in the window (30 s), with the agent's address, in
// place of memberlist's two a second, and counts every attempt.
func TestClusterWrongKey(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	keyFile, wrongFile := filepath.Join(dir, "cluster.key"), filepath.Join(dir, "wrong.key")
	writeFile(t, keyFile, base64.StdEncoding.EncodeToString([]byte("right-key-0123456789abcdef012345"))+"\n")
	writeFile(t, wrongFile, base64.StdEncoding.EncodeToString([]byte("wrong-key-0123456789abcdef012345"))+"\n")
	var targets []*target
	for range quickstartTargets {
		targets = append(targets, newTarget(t))
	}
	node := startDNSNode(t, "dns", keyFile, nil, targets)
	wrong := startAgent(t, "wrong", vantageAddrs[0], wrongFile, []string{node.gossip})
	keyless := startAgent(t, "keyless", vantageAddrs[1], "", []string{node.gossip}) // no -key-file
	for _, tc := range []struct {
		a      *agent
		reason string
	}{
		{wrong, "wrong cluster key"},
		{keyless, "no cluster key"},
	} {
		deadline := time.Now().Add(clusterTimeout)
		for {
			code, body := adminCall(t, "GET", tc.a.api(t)+"/readyz", "")
			if code == http.StatusServiceUnavailable && strings.Contains(body, tc.reason) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("agent %s /readyz: %d %s, want 503 saying %q", tc.a.name, code, body, tc.reason)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(tc.a.stderr.String(), `"level":"ERROR","msg":"cannot join the cluster"`) {
			t.Errorf("agent %s did not log at error that it cannot join:\n%s", tc.a.name, tc.a.stderr.String())
		}
	}
	// Four seconds of attempts, one every 500 ms per agent: one line each.
	time.Sleep(4 * time.Second)
	lines := node.logsWithMsg("cluster: cannot read a message")
	for _, tc := range []struct{ addr, reason string }{{vantageAddrs[0], "wrong_key"}, {vantageAddrs[1], "clear_text"}} {
		n := 0
		for _, e := range lines {
			if e.str("from") == tc.addr && e.str("reason") == tc.reason {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d lines from %s (%s), want 1: %v", n, tc.addr, tc.reason, lines)
		}
	}
	if got := len(node.logsWithMsg("memberlist: failed to receive")); got != 0 {
		t.Errorf("memberlist's own line got through %d times", got)
	}
	_, page := adminCall(t, "GET", node.api(t)+"/metrics", "")
	for _, reason := range []string{"wrong_key", "clear_text"} {
		if v := metric(page, `meridian_cluster_decrypt_errors_total{reason="`+reason+`"}`); v < 4 {
			t.Errorf("meridian_cluster_decrypt_errors_total{reason=%q} = %v, want at least 4", reason, v)
		}
	}
}
