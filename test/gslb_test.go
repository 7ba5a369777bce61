package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The quickstart's dynamic record app.example.test answers the VIPs of the
// client's region. These tests serve it with each target's TCP health check
// pointed at a 127.0.0.1 port the test picked, and make targets healthy or
// not by listening there or not.

const (
	appTTL      = 30 // record.ttl
	appFallback = 10 // record.fallback_ttl
	// healthTimeout bounds the wait for a health change to reach answers.
	// The checks run every 1s and a target falls (or rises) after 2
	// results in a row: about 2s, with a wide margin for a loaded machine.
	healthTimeout = 10 * time.Second
	// quickstartCheckPort is the port of the first target's check_address
	// in the quickstart; the others follow it, in the order of the file.
	quickstartCheckPort = 18081
	quickstartTargets   = 4 // how many targets the quickstart checks
)

// gslbRegion is one region of the quickstart as its clients see it.
type gslbRegion struct {
	name   string
	subnet string   // a client subnet inside its [[geo.network]] row, as dig +subnet takes it
	echo   string   // that subnet as the reply's CLIENT-SUBNET option gives it back, less "/scope"
	vips   []string // its pool's addresses, sorted
	check  int      // index of its (first) target's check port
	// scope is the ECS scope of its answers: the widest prefix of its
	// subnet whose clients all get the same order. us-east is also every
	// unlocated client's first region, so its answer holds for 192.0.0.0/6,
	// the widest prefix that holds no other region's row.
	scope int
}

var (
	usEast      = gslbRegion{"us-east", "192.0.2.7/24", "192.0.2.0/24", []string{"192.0.2.100", "192.0.2.101"}, 0, 6}
	euWest      = gslbRegion{"eu-west", "198.51.100.7/24", "198.51.100.0/24", []string{"198.51.100.100"}, 2, 24}
	apNortheast = gslbRegion{"ap-northeast", "203.0.113.9/24", "203.0.113.0/24", []string{"203.0.113.100"}, 3, 24}
	gslbRegions = []gslbRegion{usEast, euWest, apNortheast}
)

// healthPort is a 127.0.0.1 port one target's TCP check connects to. The
// target is healthy while the test listens there: connections are
// accepted and closed at once, which is all a TCP check asks.
type healthPort struct {
	addr    string       // 127.0.0.1:port
	accepts atomic.Int64 // connections accepted, over every listener
	ln      net.Listener // nil while down
	done    chan struct{}
}

// newHealthPorts listens on n free ports, kept open until the test ends.
func newHealthPorts(t *testing.T, n int) []*healthPort {
	t.Helper()
	ports := make([]*healthPort, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := &healthPort{addr: ln.Addr().String()}
		p.serve(ln)
		t.Cleanup(func() { p.down(t) })
		ports[i] = p
	}
	return ports
}

func (p *healthPort) serve(ln net.Listener) {
	done := make(chan struct{})
	p.ln, p.done = ln, done
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by down
			}
			p.accepts.Add(1)
			c.Close()
		}
	}()
}

// down stops listening: connections to the port are refused until up.
func (p *healthPort) down(t *testing.T) {
	t.Helper()
	if p.ln == nil {
		return
	}
	p.ln.Close()
	p.ln = nil
	select {
	case <-p.done:
	case <-time.After(exitTimeout):
		t.Errorf("accept loop of %s still running %v after close", p.addr, exitTimeout)
	}
}

// up listens on the port again.
func (p *healthPort) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("listen on %s again: %v", p.addr, err)
	}
	p.serve(ln)
}

// withCheckPorts returns an edit pointing the quickstart's check addresses
// (127.0.0.1:18081 to 18084) at ports, so no test depends on those being
// free.
func withCheckPorts(t *testing.T, ports []*healthPort) func(string) string {
	t.Helper()
	return func(config string) string {
		if n := strings.Count(config, "check_address = "); n != len(ports) {
			t.Fatalf("quickstart has %d check_address lines, the test knows %d", n, len(ports))
		}
		var pairs []string
		for i, p := range ports {
			old := fmt.Sprintf(`check_address = "127.0.0.1:%d"`, quickstartCheckPort+i)
			if n := strings.Count(config, old); n != 1 {
				t.Fatalf("expected %q exactly once, found it %d times", old, n)
			}
			pairs = append(pairs, old, fmt.Sprintf("check_address = %q", p.addr))
		}
		// One pass: a picked port cannot be replaced again.
		return strings.NewReplacer(pairs...).Replace(config)
	}
}

// startGSLB serves the quickstart with its targets checked on ports, and
// its configuration changed by edits.
func startGSLB(t *testing.T, ports []*healthPort, edits ...func(string) string) *instance {
	t.Helper()
	edits = append([]func(string) string{withCheckPorts(t, ports)}, edits...)
	return startQuickstartWith(t, func(config string) string {
		for _, edit := range edits {
			config = edit(config)
		}
		return config
	})
}

// waitChecked waits until every port has taken two check connections. A
// target's first result decides its state at once, so by the second every
// target is known to be up, not merely assumed up (health.unknown_is_up).
func waitChecked(t *testing.T, s *instance, ports []*healthPort) {
	t.Helper()
	deadline := time.Now().Add(healthTimeout)
	for _, p := range ports {
		for p.accepts.Load() < 2 {
			if s.exited() {
				t.Fatalf("meridian exited: %v", s.cmd.ProcessState)
			}
			if time.Now().After(deadline) {
				t.Fatalf("the check of %s connected %d times in %v, want 2", p.addr, p.accepts.Load(), healthTimeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// answerTTL returns the TTL of the answer records, or -1 when there are
// none or they differ.
func answerTTL(r *digReply) int {
	ttl := -1
	for i, rr := range r.sections["ANSWER"] {
		n, err := strconv.Atoi(strings.Fields(rr)[1])
		if err != nil || (i > 0 && n != ttl) {
			return -1
		}
		ttl = n
	}
	return ttl
}

var clientSubnetRe = regexp.MustCompile(`(?m)^; CLIENT-SUBNET: (\S+)$`)

// clientSubnets returns the CLIENT-SUBNET options of the reply, as dig
// prints them: address/source/scope.
func clientSubnets(r *digReply) []string {
	out := r.out
	if i := strings.LastIndex(out, "->>HEADER<<-"); i >= 0 {
		out = out[i:]
	}
	var subnets []string
	for _, m := range clientSubnetRe.FindAllStringSubmatch(out, -1) {
		subnets = append(subnets, m[1])
	}
	return subnets
}

// appAnswer is what a reply to app.example.test A says, in short.
type appAnswer struct {
	status string
	aa     bool
	addrs  []string // sorted
	ttl    int      // -1: none, or not all the same
	ecs    string   // the echoed CLIENT-SUBNET option; "" when none
}

func (a appAnswer) String() string {
	return fmt.Sprintf("%s aa=%v %v ttl %d ecs %q", a.status, a.aa, a.addrs, a.ttl, a.ecs)
}

func (a appAnswer) equal(b appAnswer) bool {
	return a.status == b.status && a.aa == b.aa && slices.Equal(a.addrs, b.addrs) && a.ttl == b.ttl && a.ecs == b.ecs
}

// want is the answer a client of region gets: addrs with ttl, and its
// subnet echoed with scope.
func (reg gslbRegion) want(addrs []string, ttl, scope int) appAnswer {
	return appAnswer{status: "NOERROR", aa: true, addrs: addrs, ttl: ttl, ecs: fmt.Sprintf("%s/%d", reg.echo, scope)}
}

// askApp queries app.example.test A as a client of region.
func askApp(t *testing.T, s *instance, reg gslbRegion) (appAnswer, *digReply) {
	t.Helper()
	r := s.dig(t, "+norec", "+time=2", "+tries=2", "+subnet="+reg.subnet, "app.example.test", "A")
	a := appAnswer{status: r.status, aa: r.flag("aa"), addrs: addresses(r), ttl: answerTTL(r)}
	if ecs := clientSubnets(r); len(ecs) > 0 {
		a.ecs = strings.Join(ecs, " ")
	}
	return a, r
}

// wantApp checks once what a client of region gets.
func wantApp(t *testing.T, s *instance, reg gslbRegion, want appAnswer) {
	t.Helper()
	if got, r := askApp(t, s, reg); !got.equal(want) {
		t.Errorf("app.example.test A for %s (%s):\n got %v\nwant %v\n%s", reg.name, reg.subnet, got, want, r.out)
	}
}

// waitApp polls until a client of region gets want, and returns how long
// that took.
func waitApp(t *testing.T, s *instance, reg gslbRegion, want appAnswer, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got, r := askApp(t, s, reg)
		if got.equal(want) {
			return time.Since(start)
		}
		if s.exited() {
			t.Fatalf("meridian exited: %v", s.cmd.ProcessState)
		}
		if time.Since(start) > timeout {
			t.Fatalf("app.example.test A for %s (%s) after %v:\n got %v\nwant %v\n%s", reg.name, reg.subnet, timeout, got, want, r.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noErrors fails the test for any ERROR in the server's log.
func noErrors(t *testing.T, s *instance) {
	t.Helper()
	for _, e := range s.logs() {
		if e.str("level") == "ERROR" {
			t.Errorf("server logged an error: %v", e)
		}
	}
}

// withLoopbackRegion maps the address dig queries from to a region of its
// own (ap-northeast, not geo.default's first), so that answers decided by
// the query's source address rather than an ECS subnet are told apart.
func withLoopbackRegion(t *testing.T) func(string) string {
	t.Helper()
	return func(config string) string {
		const last = "prefix = \"203.0.113.0/24\"\nregion = \"ap-northeast\"\n"
		return replaceOnce(t, config, last, last+"\n[[geo.network]]\nprefix = \"127.0.0.0/8\"\nregion = \"ap-northeast\"\n")
	}
}

// TestGSLBAnswers queries app.example.test with every target healthy: each
// region's clients get their region's VIPs with record.ttl, and the reply
// says (ECS scope) how widely the answer holds.
func TestGSLBAnswers(t *testing.T) {
	t.Parallel()
	ports := newHealthPorts(t, quickstartTargets)
	s := startGSLB(t, ports, withLoopbackRegion(t))
	waitChecked(t, s, ports)

	app := func(ttl int, addrs ...string) []string {
		var rrs []string
		for _, a := range addrs {
			rrs = append(rrs, fmt.Sprintf("app.example.test. %d IN A %s", ttl, a))
		}
		return rrs
	}
	ecs := func(want ...string) func(t *testing.T, r *digReply) {
		return func(t *testing.T, r *digReply) {
			if got := clientSubnets(r); !slices.Equal(got, want) {
				t.Errorf("CLIENT-SUBNET %q, want %q", got, want)
			}
		}
	}
	var cases []queryCase
	for _, reg := range gslbRegions {
		cases = append(cases, queryCase{name: reg.name + " client gets its region's VIPs",
			args:   []string{"+subnet=" + reg.subnet, "app.example.test", "A"},
			status: "NOERROR", aa: true, answer: app(appTTL, reg.vips...), check: ecs(fmt.Sprintf("%s/%d", reg.echo, reg.scope))})
	}
	cases = append(cases, []queryCase{
		{name: "query name case kept", args: []string{"+subnet=" + euWest.subnet, "App.Example.TEST", "A"},
			status: "NOERROR", aa: true, answer: []string{"App.Example.TEST. 30 IN A 198.51.100.100"}, check: ecs("198.51.100.0/24/24")},
		{name: "ECS beside an option the server does not know", args: []string{"+nsid", "+subnet=" + euWest.subnet, "app.example.test", "A"},
			status: "NOERROR", aa: true, answer: app(appTTL, euWest.vips...), check: ecs("198.51.100.0/24/24")},
		{name: "source prefix beyond ecs_max_prefix4 is used to /24, and scoped so", args: []string{"+subnet=198.51.100.7/32", "app.example.test", "A"},
			status: "NOERROR", aa: true, answer: app(appTTL, euWest.vips...), check: ecs("198.51.100.7/32/24")},
		// 0.0.0.0/2 holds no row: all of it gets the default order.
		{name: "subnet in no geo.network row gets geo.default's first region", args: []string{"+subnet=10.1.2.0/24", "app.example.test", "A"},
			status: "NOERROR", aa: true, answer: app(appTTL, usEast.vips...), check: ecs("10.1.2.0/24/2")},
		// No row is IPv6: every IPv6 client gets the same order, scope 0.
		{name: "IPv6 subnet in no row gets geo.default's first region", args: []string{"+subnet=2001:db8:1::/48", "app.example.test", "A"},
			status: "NOERROR", aa: true, answer: app(appTTL, usEast.vips...), check: ecs("2001:db8:1::/48/0")},
		// RFC 7871 section 7.1.2: source prefix 0 asks for an answer that
		// does not depend on where the client is, not even its address.
		{name: "source prefix 0 gets the answer for everyone, scope 0", args: []string{"+subnet=0.0.0.0/0", "app.example.test", "A"},
			status: "NOERROR", aa: true, answer: app(appTTL, usEast.vips...), check: ecs("0.0.0.0/0/0")},
		{name: "without ECS the query's source address decides", args: []string{"app.example.test", "A"},
			status: "NOERROR", aa: true, answer: app(appTTL, apNortheast.vips...), check: ecs()},
		{name: "without EDNS the query's source address decides", args: []string{"+noedns", "app.example.test", "A"},
			status: "NOERROR", aa: true, noEDNS: true, answer: app(appTTL, apNortheast.vips...)},
		// Option 8 by hand: family (2 octets), source prefix, scope prefix, address.
		{name: "hand-made well-formed ECS is answered", args: []string{"+ednsopt=8:00011800c00002", "app.example.test", "A"},
			status: "NOERROR", aa: true, answer: app(appTTL, usEast.vips...), check: ecs("192.0.2.0/24/6")},

		// Types the record does not have: NODATA, the same for everyone.
		{name: "AAAA of the A-only dynamic name is NODATA", args: []string{"+subnet=" + euWest.subnet, "app.example.test", "AAAA"},
			status: "NOERROR", aa: true, authority: []string{negSOA}, check: ecs("198.51.100.0/24/0")},
		{name: "MX of the dynamic name is NODATA", args: []string{"app.example.test", "MX"},
			status: "NOERROR", aa: true, authority: []string{negSOA}, check: ecs()},

		// Static data does not depend on the client: scope 0.
		{name: "static name with ECS answers as before, scope 0", args: []string{"+subnet=" + euWest.subnet, "www.example.test", "A"},
			status: "NOERROR", aa: true, answer: []string{wwwA10, wwwA11}, check: ecs("198.51.100.0/24/0")},
		{name: "static NXDOMAIN with ECS, scope 0", args: []string{"+subnet=" + usEast.subnet, "nope.example.test", "A"},
			status: "NXDOMAIN", aa: true, authority: []string{negSOA}, check: ecs("192.0.2.0/24/0")},

		// Client Subnet options that do not unpack: the listener's bare FORMERR.
		{name: "ECS with an unknown family is FORMERR", args: []string{"+ednsopt=8:00030800c0", "app.example.test", "A"},
			status: "FORMERR", noEDNS: true, anyQuestion: true},
		{name: "ECS with a source prefix longer than the address is FORMERR", args: []string{"+ednsopt=8:00012100c0000207", "app.example.test", "A"},
			status: "FORMERR", noEDNS: true, anyQuestion: true},
	}...)
	// RFC 7871 section 6: an address with bits set past the source prefix,
	// or with more or fewer octets than the prefix needs, SHOULD get
	// FORMERR, whatever other options come along and for any name.
	for _, bad := range []struct{ name, hex string }{
		{"address bits set past the source prefix", "00011000c00002"},
		{"more address octets than the prefix needs", "00011000c00000"},
		{"fewer address octets than the prefix needs", "00011800c000"},
	} {
		for _, v := range []struct {
			how  string
			args []string
		}{
			{"", []string{"app.example.test", "A"}},
			{" beside another EDNS option", []string{"+nsid", "app.example.test", "A"}},
			{" on a static name", []string{"www.example.test", "A"}},
		} {
			cases = append(cases, queryCase{name: "ECS with " + bad.name + v.how + " is FORMERR",
				args: append([]string{"+ednsopt=8:" + bad.hex}, v.args...), status: "FORMERR"})
		}
	}
	// UDP queries and TCP ones take different paths through the server:
	// every case again over TCP.
	for _, tc := range slices.Clone(cases) {
		tc.name += " (TCP)"
		tc.args = append([]string{"+tcp"}, tc.args...)
		cases = append(cases, tc)
	}

	t.Run("dig", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				args := append([]string{"+norec", "+time=5", "+tries=2"}, tc.args...)
				checkReply(t, tc, s.dig(t, args...))
			})
		}
	})
	noErrors(t, s)
}

// TestGSLBHealth takes eu-west's only target down and up again: its
// clients fall back to the next region of geo.default with fallback_ttl,
// and come back once the target passes its checks again.
func TestGSLBHealth(t *testing.T) {
	t.Parallel()
	ports := newHealthPorts(t, quickstartTargets)
	s := startGSLB(t, ports)
	waitChecked(t, s, ports)
	for _, reg := range gslbRegions {
		wantApp(t, s, reg, reg.want(reg.vips, appTTL, reg.scope))
	}
	if t.Failed() {
		t.FailNow()
	}
	const target = "eu-west/198.51.100.100"

	ports[euWest.check].down(t)
	took := waitApp(t, s, euWest, euWest.want(usEast.vips, appFallback, euWest.scope), healthTimeout)
	t.Logf("eu-west clients moved to us-east %v after its target went down", took.Round(time.Millisecond))
	// Only eu-west's clients move.
	wantApp(t, s, usEast, usEast.want(usEast.vips, appTTL, usEast.scope))
	wantApp(t, s, apNortheast, apNortheast.want(apNortheast.vips, appTTL, apNortheast.scope))
	if e := waitTargetLog(t, s, target, "target down"); e.str("level") != "WARN" {
		t.Errorf("%v logged at %s, want WARN", e, e.str("level"))
	}

	ports[euWest.check].up(t)
	took = waitApp(t, s, euWest, euWest.want(euWest.vips, appTTL, euWest.scope), healthTimeout)
	t.Logf("eu-west clients back home %v after its target came up", took.Round(time.Millisecond))
	waitTargetLog(t, s, target, "target up")
	noErrors(t, s)
}

// waitTargetLog waits until the newest log entry about a health target
// has message msg, and returns it. The log is read from a pipe, so it may
// lag a little behind the answers.
func waitTargetLog(t *testing.T, s *instance, target, msg string) logEntry {
	t.Helper()
	deadline := time.Now().Add(reloadTimeout)
	for {
		var last logEntry
		for _, e := range s.logs() {
			if e.str("target") == target {
				last = e
			}
		}
		if last.str("msg") == msg {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("newest log entry for target %s after %v: %v, want %q", target, reloadTimeout, last, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGSLBFailOpen serves with no target reachable: nothing is eligible,
// and the record fails open, each region's clients getting their own
// region's VIPs with fallback_ttl.
func TestGSLBFailOpen(t *testing.T) {
	t.Parallel()
	ports := newHealthPorts(t, quickstartTargets)
	for _, p := range ports {
		p.down(t)
	}
	s := startGSLB(t, ports)
	// Until the first checks fail, targets count as up (unknown_is_up)
	// and answers carry record.ttl.
	took := waitApp(t, s, euWest, euWest.want(euWest.vips, appFallback, euWest.scope), healthTimeout)
	t.Logf("failing open %v after start", took.Round(time.Millisecond))
	for _, reg := range gslbRegions {
		wantApp(t, s, reg, reg.want(reg.vips, appFallback, reg.scope))
	}
	for _, reg := range gslbRegions {
		for _, vip := range reg.vips {
			waitTargetLog(t, s, reg.name+"/"+vip, "target down")
		}
	}
	noErrors(t, s)
}

// TestGSLBReload changes the dynamic record and reloads with SIGHUP; a
// configuration naming an undefined region is rejected and the previous
// one keeps answering.
func TestGSLBReload(t *testing.T) {
	t.Parallel()
	ports := newHealthPorts(t, quickstartTargets)
	s := startGSLB(t, ports)
	waitChecked(t, s, ports)
	original := readFile(t, s.config)
	wantApp(t, s, euWest, euWest.want(euWest.vips, appTTL, euWest.scope))

	// hup writes config, sends SIGHUP and waits for the log line saying
	// how the reload ended.
	hup := func(t *testing.T, config, outcome string) logEntry {
		t.Helper()
		writeFile(t, s.config, config)
		have := len(s.logsWithMsg(outcome))
		s.signal(t, syscall.SIGHUP)
		return s.waitLog(t, outcome, have)
	}

	moved := replaceOnce(t, original, `address = "198.51.100.100"`, `address = "198.51.100.200"`)
	t.Run("changed target address is answered after SIGHUP", func(t *testing.T) {
		hup(t, moved, "reloaded")
		waitApp(t, s, euWest, euWest.want([]string{"198.51.100.200"}, appTTL, euWest.scope), reloadTimeout)
		wantApp(t, s, apNortheast, apNortheast.want(apNortheast.vips, appTTL, apNortheast.scope))
	})

	// failover: the pools in file order, whoever asks; the answer holds
	// for every client, so scope 0.
	failover := replaceOnce(t, moved, `policy = "geo"`, `policy = "failover"`)
	t.Run("changed policy is answered after SIGHUP", func(t *testing.T) {
		hup(t, failover, "reloaded")
		for _, reg := range gslbRegions {
			waitApp(t, s, reg, reg.want(usEast.vips, appTTL, 0), reloadTimeout)
		}
	})

	t.Run("record in an undefined region is rejected and the old answers kept", func(t *testing.T) {
		// From the original: were any of it applied, eu-west's clients
		// would get eu-west's VIP again.
		bad := replaceOnce(t, original, "[[record.pool]]\nregion = \"us-east\"\n", "[[record.pool]]\nregion = \"us-central\"\n")
		line := strings.Count(bad[:strings.Index(bad, `region = "us-central"`)], "\n") + 1
		e := hup(t, bad, "reload failed")
		want := fmt.Sprintf(`%s:%d: record[0].pool[0].region: no [[region]] is named "us-central"`, s.config, line)
		if e.str("level") != "ERROR" || !strings.Contains(e.str("err"), want) {
			t.Errorf("reload failure logged as %v, want level ERROR and %q", e, want)
		}
		for _, reg := range gslbRegions {
			wantApp(t, s, reg, reg.want(usEast.vips, appTTL, 0))
		}
	})

	t.Run("original configuration is answered again after SIGHUP", func(t *testing.T) {
		hup(t, original, "reloaded")
		for _, reg := range gslbRegions {
			waitApp(t, s, reg, reg.want(reg.vips, appTTL, reg.scope), reloadTimeout)
		}
	})

	// Only the rejected reload may have logged an error.
	for _, e := range s.logs() {
		if e.str("level") == "ERROR" && e.str("msg") != "reload failed; still serving the previous configuration" {
			t.Errorf("server logged an error: %v", e)
		}
	}
}

// TestGSLBCheck runs meridian check on configurations whose dynamic record
// is wrong, and on one that is right.
func TestGSLBCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		old, new string // the edit to the quickstart's configuration
		code     int
		key      string // the key the error names, on the line where new ends
		message  string
	}{
		{name: "dynamic record in no zone",
			old: `name = "app.example.test"`, new: `name = "app.example.org"`,
			code: 1, key: "record[0].name", message: "app.example.org. is in no [[zone]] this server serves"},
		{name: "dynamic record below a delegation",
			old: `name = "app.example.test"`, new: `name = "app.child.example.test"`,
			code: 1, key: "record[0].name", message: "app.child.example.test. is below a delegation in zone example.test."},
		{name: "dynamic record at a name with static records",
			old: `name = "app.example.test"`, new: `name = "www.example.test"`,
			code: 1, key: "record[0].name", message: "www.example.test. also has static records"},
		{name: "pool in an undefined region",
			old: "[[record.pool]]\nregion = \"us-east\"", new: "[[record.pool]]\nregion = \"us-central\"",
			code: 1, key: "record[0].pool[0].region", message: `no [[region]] is named "us-central"`},
		{name: "geo.default naming an undefined region",
			old: `default = ["us-east", "eu-west", "ap-northeast"]`, new: `default = ["us-east", "eu-west", "ap-southeast"]`,
			code: 1, key: "record[0].geo.default", message: `no [[region]] is named "ap-southeast"`},
		{name: "dynamic record covered by a wildcard is allowed",
			old: `name = "app.example.test"`, new: `name = "app.apps.example.test"`, code: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir, configFor := copyQuickstart(t)
			config := replaceOnce(t, configFor(1053), tc.old, tc.new) // check binds nothing
			// The error names the line where new ends.
			line := strings.Count(config[:strings.Index(config, tc.new)+len(tc.new)], "\n") + 1
			path := filepath.Join(dir, "meridian.toml")
			writeFile(t, path, config)
			stdout, stderr, code := runMeridian(t, "check", "-config", path)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			if tc.code == 0 {
				if !strings.Contains(stdout, "meridian.toml: ok") || stderr != "" {
					t.Errorf("stdout:\n%s\nstderr:\n%s\nwant \"ok\" and no errors", stdout, stderr)
				}
				return
			}
			want := fmt.Sprintf("meridian.toml:%d: %s: %s", line, tc.key, tc.message)
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
			if stdout != "" {
				t.Errorf("unexpected stdout for an invalid configuration:\n%s", stdout)
			}
		})
	}
}
