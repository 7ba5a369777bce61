package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Records of the quickstart zone, as dig prints them.
const (
	// The SOA in negative answers carries min(SOA TTL 3600, MINIMUM 300)
	// (RFC 2308 section 5), not the SOA's own TTL.
	negSOA = "example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 2026112501 7200 3600 1209600 300"
	wwwA10 = "www.example.test. 300 IN A 192.0.2.10"
	wwwA11 = "www.example.test. 300 IN A 192.0.2.11"
)

// queryCase is one dig invocation and the reply a user should see.
type queryCase struct {
	name   string
	args   []string // dig arguments after @server -p port
	opcode string   // "" means QUERY
	status string
	aa, tc bool
	// noEDNS: the query has no OPT (dig +noedns), so neither may the reply;
	// otherwise the reply must carry one (RFC 6891 section 6.1.1).
	noEDNS bool
	// anyQuestion: the reply need not echo the question (error replies to
	// queries the server did not parse).
	anyQuestion bool
	// Records expected in each section, compared as sets; nil means empty.
	answer, authority, additional []string
	// unchecked names sections left to check instead of compared exactly.
	unchecked []string
	check     func(t *testing.T, r *digReply)
	// needs is a dig option that older dig versions lack.
	needs string
}

func TestQueries(t *testing.T) {
	s := startQuickstart(t)
	version, _, code := runMeridian(t, "version")
	if code != 0 {
		t.Fatalf("meridian version exited %d", code)
	}
	version = strings.TrimSpace(version)

	cases := []queryCase{
		{name: "A with two records", args: []string{"www.example.test", "A"},
			status: "NOERROR", aa: true, answer: []string{wwwA10, wwwA11}},
		{name: "query case kept in the answer", args: []string{"WwW.ExAmPlE.tEsT", "A"},
			status: "NOERROR", aa: true,
			answer: []string{"WwW.ExAmPlE.tEsT. 300 IN A 192.0.2.10", "WwW.ExAmPlE.tEsT. 300 IN A 192.0.2.11"}},
		{name: "A over TCP", args: []string{"+tcp", "www.example.test", "A"},
			status: "NOERROR", aa: true, answer: []string{wwwA10, wwwA11}},
		{name: "inline record from the config", args: []string{"api.example.test", "A"},
			status: "NOERROR", aa: true, answer: []string{"api.example.test. 60 IN A 192.0.2.20"}},
		{name: "SRV with target addresses in additional", args: []string{"_https._tcp.example.test", "SRV"},
			status: "NOERROR", aa: true,
			answer:     []string{"_https._tcp.example.test. 300 IN SRV 10 5 443 www.example.test."},
			additional: []string{wwwA10, wwwA11, "www.example.test. 300 IN AAAA 2001:db8::10"}},
		{name: "NXDOMAIN with negative SOA", args: []string{"nope.example.test", "A"},
			status: "NXDOMAIN", aa: true, authority: []string{negSOA}},
		{name: "NODATA for a missing type", args: []string{"www.example.test", "MX"},
			status: "NOERROR", aa: true, authority: []string{negSOA}},
		{name: "empty non-terminal is NODATA not NXDOMAIN", args: []string{"path.to.example.test", "TXT"},
			status: "NOERROR", aa: true, authority: []string{negSOA}},
		{name: "CNAME followed inside the zone", args: []string{"shop.example.test", "A"},
			status: "NOERROR", aa: true,
			answer: []string{"shop.example.test. 300 IN CNAME www.example.test.", wwwA10, wwwA11},
			check: func(t *testing.T, r *digReply) {
				// Resolvers expect the CNAME before the data it leads to.
				if got := r.sections["ANSWER"][0]; !strings.Contains(got, " CNAME ") {
					t.Errorf("first answer record %q, want the CNAME", got)
				}
			}},
		{name: "wildcard synthesised with the query name", args: []string{"anything.apps.example.test", "A"},
			status: "NOERROR", aa: true, answer: []string{"anything.apps.example.test. 300 IN A 192.0.2.80"}},
		{name: "referral below a delegation", args: []string{"host.child.example.test", "A"},
			status: "NOERROR", aa: false,
			authority:  []string{"child.example.test. 300 IN NS ns1.child.example.test.", "child.example.test. 300 IN NS ns2.child.example.test."},
			additional: []string{"ns1.child.example.test. 300 IN A 192.0.2.153", "ns2.child.example.test. 300 IN A 192.0.2.154"}},
		{name: "zone not served is REFUSED", args: []string{"example.org", "A"},
			status: "REFUSED"},
		{name: "ANY gives one RRset", args: []string{"example.test", "ANY"},
			status: "NOERROR", aa: true, unchecked: []string{"ANSWER", "ADDITIONAL"},
			check: func(t *testing.T, r *digReply) {
				// RFC 8482 section 4.1 lets the server pick which RRset.
				ans := r.sections["ANSWER"]
				if len(ans) == 0 {
					t.Fatal("no answer records")
				}
				sets := map[string]bool{}
				for _, rr := range ans {
					f := strings.Fields(rr)
					sets[f[0]+" "+f[2]+" "+f[3]] = true
				}
				if len(sets) != 1 {
					t.Errorf("answer holds %d RRsets, want 1: %q", len(sets), ans)
				}
				if !strings.HasPrefix(ans[0], "example.test. ") {
					t.Errorf("answer owner %q, want example.test.", ans[0])
				}
			}},

		// An RRset larger than one UDP reply: never split, TC set, TCP gets it whole.
		{name: "oversized RRset over UDP is truncated whole", args: []string{"+ignore", "big.example.test", "TXT"},
			status: "NOERROR", aa: true, tc: true,
			check: func(t *testing.T, r *digReply) {
				if n := r.counts["ANSWER"]; n != 0 {
					t.Errorf("truncated reply has ANSWER: %d, want 0 (no partial RRset)", n)
				}
			}},
		{name: "oversized RRset without EDNS is truncated whole", args: []string{"+ignore", "+noedns", "big.example.test", "TXT"},
			status: "NOERROR", aa: true, tc: true, noEDNS: true,
			check: func(t *testing.T, r *digReply) {
				if n := r.counts["ANSWER"]; n != 0 {
					t.Errorf("truncated reply has ANSWER: %d, want 0 (no partial RRset)", n)
				}
			}},
		{name: "dig retries a truncated reply over TCP", args: []string{"big.example.test", "TXT"},
			status: "NOERROR", aa: true, unchecked: []string{"ANSWER"},
			check: func(t *testing.T, r *digReply) {
				if !strings.Contains(r.out, "Truncated, retrying in TCP mode") {
					t.Error("dig did not report a truncated UDP reply")
				}
				checkBigTXT(t, r)
			}},
		{name: "oversized RRset over TCP", args: []string{"+tcp", "big.example.test", "TXT"},
			status: "NOERROR", aa: true, unchecked: []string{"ANSWER"}, check: checkBigTXT},

		// EDNS (RFC 6891).
		{name: "EDNS version 1 is BADVERS", args: []string{"+edns=1", "+noednsnegotiation", "www.example.test", "A"},
			status: "BADVERS"},
		{name: "dig falls back to EDNS 0 after BADVERS", args: []string{"+edns=1", "www.example.test", "A"},
			status: "NOERROR", aa: true, answer: []string{wwwA10, wwwA11},
			check: func(t *testing.T, r *digReply) {
				if !strings.Contains(r.out, "BADVERS, retrying with EDNS version 0") {
					t.Error("dig did not report BADVERS for EDNS version 1")
				}
			}},
		{name: "server advertises its own UDP size", args: []string{"+bufsize=4096", "www.example.test", "A"},
			status: "NOERROR", aa: true, answer: []string{wwwA10, wwwA11},
			check: func(t *testing.T, r *digReply) {
				if r.udpSize != 1232 {
					t.Errorf("OPT udp: %d, want 1232 (edns_udp_size default)", r.udpSize)
				}
			}},
		{name: "no OPT without EDNS", args: []string{"+noedns", "www.example.test", "A"},
			status: "NOERROR", aa: true, noEDNS: true, answer: []string{wwwA10, wwwA11}},

		// CHAOS identity (RFC 4892).
		{name: "CHAOS version.bind", args: []string{"version.bind", "TXT", "CH"},
			status: "NOERROR", aa: true, answer: []string{`version.bind. 0 CH TXT "` + version + `"`}},
		{name: "CHAOS id.server from config, case kept", args: []string{"ID.Server", "TXT", "CH"},
			status: "NOERROR", aa: true, answer: []string{`ID.Server. 0 CH TXT "e2e-node"`}},
		{name: "CHAOS hostname.bind", args: []string{"hostname.bind", "TXT", "CH"},
			status: "NOERROR", aa: true, answer: []string{`hostname.bind. 0 CH TXT "e2e-node"`}},

		// Queries the server does not take, answered by the listener itself.
		{name: "NOTIFY is NOTIMP", args: []string{"+opcode=notify", "example.test", "SOA"}, needs: "+[no]opcode",
			opcode: "NOTIFY", status: "NOTIMP", anyQuestion: true},
		{name: "STATUS without EDNS is NOTIMP", args: []string{"+opcode=status", "+noedns", "example.test", "SOA"}, needs: "+[no]opcode",
			opcode: "STATUS", status: "NOTIMP", noEDNS: true, anyQuestion: true},
		{name: "NOTIFY over TCP is NOTIMP", args: []string{"+tcp", "+opcode=notify", "example.test", "SOA"}, needs: "+[no]opcode",
			opcode: "NOTIFY", status: "NOTIMP", anyQuestion: true},
		{name: "NOTIFY over TCP without EDNS is NOTIMP", args: []string{"+tcp", "+opcode=notify", "+noedns", "example.test", "SOA"}, needs: "+[no]opcode",
			opcode: "NOTIFY", status: "NOTIMP", noEDNS: true, anyQuestion: true},
		{name: "query without a question is FORMERR", args: []string{"+header-only"}, needs: "+[no]header-only",
			status: "FORMERR", anyQuestion: true},
	}

	help := digHelp(t)
	t.Run("dig", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				if tc.needs != "" && !strings.Contains(help, tc.needs) {
					t.Skipf("this dig has no %s option", tc.needs)
				}
				// +norec: an authoritative server is asked without recursion,
				// as resolvers do; the reply must then be exactly "qr" plus
				// what the case expects.
				args := append([]string{"+norec", "+time=5", "+tries=2"}, tc.args...)
				checkReply(t, tc, s.dig(t, args...))
			})
		}
	})

	// No query above should have made the server log an error (a reply it
	// could not pack, a listener that failed).
	for _, e := range s.logs() {
		if e.str("level") == "ERROR" {
			t.Errorf("server logged an error: %v", e)
		}
	}
}

func checkReply(t *testing.T, tc queryCase, r *digReply) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("dig output:\n%s", r.out)
		}
	}()
	opcode := tc.opcode
	if opcode == "" {
		opcode = "QUERY"
	}
	if r.opcode != opcode || r.status != tc.status {
		t.Errorf("opcode %s, status %s; want opcode %s, status %s", r.opcode, r.status, opcode, tc.status)
	}
	if !r.flag("qr") {
		t.Errorf("flags %q lack qr", r.flags)
	}
	if r.flag("aa") != tc.aa {
		t.Errorf("flags %q: aa %v, want %v", r.flags, r.flag("aa"), tc.aa)
	}
	if r.flag("tc") != tc.tc {
		t.Errorf("flags %q: tc %v, want %v", r.flags, r.flag("tc"), tc.tc)
	}
	// Meridian never recurses, validates nor signs: ra and ad would be
	// false claims. dig sets rd only without +norec and ad by default, so a
	// server that echoes query bits shows up here.
	for _, f := range []string{"ra", "ad", "rd"} {
		if r.flag(f) {
			t.Errorf("flags %q include %s", r.flags, f)
		}
	}
	if !tc.anyQuestion && r.counts["QUERY"] != 1 {
		t.Errorf("QUERY: %d, want the question echoed", r.counts["QUERY"])
	}
	switch {
	case tc.noEDNS && r.opt:
		t.Error("reply has an OPT record but the query had none (RFC 6891 section 7)")
	case !tc.noEDNS && !r.opt:
		t.Error("reply has no OPT record but the query had one (RFC 6891 section 6.1.1)")
	case r.opt && (r.ednsVersion != 0 || r.udpSize != 1232):
		t.Errorf("OPT version %d udp %d, want version 0 udp 1232", r.ednsVersion, r.udpSize)
	}
	for _, sec := range []struct {
		name string
		want []string
	}{
		{"ANSWER", tc.answer},
		{"AUTHORITY", tc.authority},
		{"ADDITIONAL", tc.additional},
	} {
		got := r.sections[sec.name]
		// dig counts the OPT record in ADDITIONAL but prints it apart.
		n := r.counts[sec.name]
		if sec.name == "ADDITIONAL" && r.opt {
			n--
		}
		if n != len(got) {
			t.Errorf("%s: %d in the header, %d records printed", sec.name, n, len(got))
		}
		if slices.Contains(tc.unchecked, sec.name) {
			continue
		}
		if !sameRecords(got, sec.want) {
			t.Errorf("%s section:\n got %q\nwant %q", sec.name, got, sec.want)
		}
	}
	if tc.check != nil {
		tc.check(t, r)
	}
}

// checkBigTXT checks that the whole 24-record RRset of big.include arrived.
func checkBigTXT(t *testing.T, r *digReply) {
	t.Helper()
	ans := r.sections["ANSWER"]
	if len(ans) != 24 {
		t.Errorf("%d answer records, want the 24 TXT records of big.example.test", len(ans))
	}
	for i := range 24 {
		want := fmt.Sprintf(`big.example.test. 300 IN TXT "record %02d of a set`, i)
		if !slices.ContainsFunc(ans, func(rr string) bool { return strings.HasPrefix(rr, want) }) {
			t.Errorf("record %02d missing from the answer", i)
		}
	}
}

// digHelp returns dig's option list, to skip cases this dig cannot express.
func digHelp(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("dig", "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("dig -h: %v\n%s", err, out)
	}
	return string(out)
}

// waitAnswers polls www.example.test A until its addresses are want, since a
// reload is applied some time after SIGHUP is delivered.
func waitAnswers(t *testing.T, s *instance, want ...string) {
	t.Helper()
	deadline := time.Now().Add(reloadTimeout)
	for {
		got := addresses(s.dig(t, "+norec", "www.example.test", "A"))
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("www.example.test A is %q after %v, want %q", got, reloadTimeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantAnswers checks www.example.test A once, for data that must not change.
func wantAnswers(t *testing.T, s *instance, want ...string) {
	t.Helper()
	r := s.dig(t, "+norec", "www.example.test", "A")
	if got := addresses(r); r.status != "NOERROR" || !slices.Equal(got, want) {
		t.Errorf("www.example.test A: %s %q, want NOERROR %q", r.status, got, want)
	}
}

// wantSerial checks the SOA serial the server hands out.
func wantSerial(t *testing.T, s *instance, want string) {
	t.Helper()
	r := s.dig(t, "+norec", "example.test", "SOA")
	ans := r.sections["ANSWER"]
	if len(ans) != 1 || strings.Fields(ans[0])[6] != want {
		t.Errorf("example.test SOA: %q, want serial %s", ans, want)
	}
}

func addresses(r *digReply) []string {
	var out []string
	for _, rr := range r.sections["ANSWER"] {
		f := strings.Fields(rr)
		out = append(out, f[len(f)-1])
	}
	slices.Sort(out)
	return out
}

// noSOA removes the SOA record (written over several lines) from a zone.
var noSOA = regexp.MustCompile(`(?s)\n@\s+3600 IN SOA .*?\)[^\n]*`)

func TestReloadAndShutdown(t *testing.T) {
	s := startQuickstart(t)
	zonePath := filepath.Join(s.dir, "example.test.zone")
	original := readFile(t, zonePath)
	goodConfig := readFile(t, s.config)
	wantAnswers(t, s, "192.0.2.10", "192.0.2.11")

	// withSerial returns the quickstart zone with a new serial and one of
	// www's addresses changed, so each reload is visible in answers.
	withSerial := func(serial, addr string) string {
		z := replaceOnce(t, original, "2026112501 ; serial", serial+" ; serial")
		return replaceOnce(t, z, "www          IN A     192.0.2.10\n", "www          IN A     "+addr+"\n")
	}
	// hup sends SIGHUP and waits for the log line saying how it ended.
	hup := func(t *testing.T, outcome string) logEntry {
		t.Helper()
		have := len(s.logsWithMsg(outcome))
		s.signal(t, syscall.SIGHUP)
		return s.waitLog(t, outcome, have)
	}

	t.Run("changed zone is served after SIGHUP", func(t *testing.T) {
		writeFile(t, zonePath, withSerial("2026112502", "192.0.2.99"))
		s.signal(t, syscall.SIGHUP)
		waitAnswers(t, s, "192.0.2.11", "192.0.2.99")
		wantSerial(t, s, "2026112502")
		e := s.waitLog(t, "reloaded", 0)
		if !strings.Contains(e.str("zones"), "example.test.@2026112502") {
			t.Errorf("reload log %v does not name the new serial", e)
		}
	})

	t.Run("zone without SOA is rejected and the old data kept", func(t *testing.T) {
		broken := noSOA.ReplaceAllString(withSerial("2026112503", "192.0.2.77"), "")
		if strings.Contains(broken, " SOA ") {
			t.Fatalf("could not remove the SOA record:\n%s", broken)
		}
		writeFile(t, zonePath, broken)
		e := hup(t, "reload failed")
		if e.str("level") != "ERROR" || !strings.Contains(e.str("err"), "no SOA record") {
			t.Errorf("reload failure logged as %v, want level ERROR and the missing SOA named", e)
		}
		wantAnswers(t, s, "192.0.2.11", "192.0.2.99")
		wantSerial(t, s, "2026112502")
	})

	t.Run("config with an unknown key is rejected and the old data kept", func(t *testing.T) {
		// The zone is valid again: nothing of it may be served while the
		// configuration naming it is rejected.
		writeFile(t, zonePath, withSerial("2026112503", "192.0.2.77"))
		bad, line := addKey(t, goodConfig, "[server]", `identiy = "typo"`)
		writeFile(t, s.config, bad)
		e := hup(t, "reload failed")
		want := fmt.Sprintf("%s:%d: server.identiy: unknown key", s.config, line)
		if e.str("level") != "ERROR" || !strings.Contains(e.str("err"), want) {
			t.Errorf("reload failure logged as %v, want level ERROR and %q", e, want)
		}
		wantAnswers(t, s, "192.0.2.11", "192.0.2.99")
		wantSerial(t, s, "2026112502")
	})

	t.Run("fixed config is served after SIGHUP", func(t *testing.T) {
		writeFile(t, s.config, goodConfig)
		hup(t, "reloaded")
		wantAnswers(t, s, "192.0.2.11", "192.0.2.77")
		wantSerial(t, s, "2026112503")
	})

	t.Run("SIGTERM stops cleanly", func(t *testing.T) {
		s.signal(t, syscall.SIGTERM)
		if code := s.waitExit(t); code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0", code)
		}
		logs := s.logs()
		if len(logs) == 0 || logs[len(logs)-1].str("msg") != "stopped" {
			t.Errorf("last log entry is not \"stopped\": %v", logs)
		}
		if len(s.logsWithMsg("shutting down")) != 1 {
			t.Error("no \"shutting down\" log entry")
		}
	})
}

// addKey inserts key after the line holding table and returns the new text
// and the line number the key landed on.
func addKey(t *testing.T, config, table, key string) (string, int) {
	t.Helper()
	out := replaceOnce(t, config, table+"\n", table+"\n"+key+"\n")
	line := strings.Count(out[:strings.Index(out, key)], "\n") + 1
	return out, line
}

func TestCheck(t *testing.T) {
	dir, configFor := copyQuickstart(t)
	good := configFor(1053) // check binds nothing; any port will do
	zone := readFile(t, filepath.Join(dir, "example.test.zone"))

	type checkCase struct {
		name       string
		config     string // meridian.toml contents
		zone       string // example.test.zone contents
		code       int
		stdout     []string // substrings expected on stdout
		stderr     []string // substrings expected on stderr; none means empty
		notStderr  []string // substrings that must not be on stderr
		configPath string   // -config value, when not the written file
	}
	serverKey, serverLine := addKey(t, good, "[server]", `identiy = "typo"`)
	zoneKey, zoneLine := addKey(t, good, "[[zone]]", `ttl = 60`)
	cases := []checkCase{
		{name: "valid configuration", config: good, zone: zone, code: 0,
			stdout: []string{"zone example.test.: serial 2026112501", "meridian.toml: ok"}},
		{name: "unknown server key", config: serverKey, zone: zone, code: 1,
			stderr: []string{fmt.Sprintf("meridian.toml:%d: server.identiy: unknown key", serverLine)}},
		{name: "unknown zone key", config: zoneKey, zone: zone, code: 1,
			stderr: []string{fmt.Sprintf("meridian.toml:%d: zone[0].ttl: unknown key", zoneLine)}},
		{name: "zone without SOA", config: good, zone: noSOA.ReplaceAllString(zone, ""), code: 1,
			stderr: []string{"zone[0]", "no SOA record"}},
		{name: "missing config file", config: good, zone: zone, code: 1,
			configPath: filepath.Join(dir, "absent.toml"), stderr: []string{"absent.toml"}},
		{name: "cluster example, first node", config: good, zone: zone, code: 0,
			configPath: filepath.Join("..", "examples", "cluster", "dns1.toml"), stdout: []string{"dns1.toml: ok"}},
		{name: "cluster example, second node", config: good, zone: zone, code: 0,
			configPath: filepath.Join("..", "examples", "cluster", "dns2.toml"), stdout: []string{"dns2.toml: ok"}},
		{name: "cluster beyond loopback without a key", config: good + "\n[cluster]\nbind = \"192.0.2.1:7946\"\n", zone: zone, code: 1,
			stderr: []string{"cluster.key_file: gossip on 192.0.2.1:7946 would be in clear"}},
		// Issue 15, item 6: includes stay in the zone's folder, and errors
		// quote no file content.
		{name: "$INCLUDE /etc/passwd", config: good, zone: zone + "$INCLUDE /etc/passwd\n", code: 1,
			stderr:    []string{fmt.Sprintf("example.test.zone:%d:", strings.Count(zone, "\n")+1), "may only read files in the zone file's folder"},
			notStderr: []string{"root:"}},
		// Issue 15, item 7: every bad record is listed, not just the first.
		{name: "every zone file error", config: good, zone: zone + "bad1 IN A 192.0.2.256\nok1 IN A 192.0.2.1\nbad2 IN MX mail\n", code: 1,
			stderr: []string{
				fmt.Sprintf("example.test.zone:%d:", strings.Count(zone, "\n")+1) + "21: dns: bad A A",
				fmt.Sprintf("example.test.zone:%d:", strings.Count(zone, "\n")+3) + "15: dns: bad MX Pref",
			},
			notStderr: []string{"192.0.2.256"}},
		{name: "cluster with a bad quorum", config: good + "\n[cluster]\nbind = \"127.0.0.1:7946\"\nquorum = \"most\"\n", zone: zone, code: 1,
			stderr: []string{"cluster.quorum:", "quorum must be"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "big.include"), readFile(t, filepath.Join(quickstartDir, "big.include")))
			config := filepath.Join(dir, "meridian.toml")
			writeFile(t, config, tc.config)
			writeFile(t, filepath.Join(dir, "example.test.zone"), tc.zone)
			if tc.configPath != "" {
				config = tc.configPath
			}
			stdout, stderr, code := runMeridian(t, "check", "-config", config)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			for _, bad := range tc.notStderr {
				if strings.Contains(stderr, bad) {
					t.Errorf("stderr has %q:\n%s", bad, stderr)
				}
			}
			if len(tc.stderr) == 0 && stderr != "" {
				t.Errorf("unexpected stderr:\n%s", stderr)
			}
		})
	}
}

// TestServeRejectsBadConfig checks serve refuses to start, rather than
// serving defaults, when its configuration is wrong.
func TestServeRejectsBadConfig(t *testing.T) {
	dir, configFor := copyQuickstart(t)
	bad, line := addKey(t, configFor(freePort(t)), "[server]", `identiy = "typo"`)
	config := filepath.Join(dir, "meridian.toml")
	writeFile(t, config, bad)
	_, stderr, code := runMeridian(t, "serve", "-config", config)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if want := fmt.Sprintf("%s:%d: server.identiy: unknown key", config, line); !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}

func TestVersion(t *testing.T) {
	stdout, stderr, code := runMeridian(t, "version")
	if code != 0 {
		t.Errorf("exit code %d, want 0; stderr:\n%s", code, stderr)
	}
	if !regexp.MustCompile(`^meridian \S.*\n$`).MatchString(stdout) {
		t.Errorf("version output %q, want one line \"meridian <version>\"", stdout)
	}
}
