package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// The signed quickstart (examples/dnssec) checked by real validators:
// BIND's delv, and unbound as a resolver with the zone's trust anchor.

var dnssecDir = filepath.Join("..", "examples", "dnssec")

// signed is a running signed quickstart and what validators need of it.
type signed struct {
	*instance
	keys string // the key folder
}

// startSigned serves examples/dnssec from a fresh folder, with a key made
// by meridian dnssec keygen; edit (when not nil) changes the
// configuration before it is written.
func startSigned(t *testing.T, edit func(string) string) *signed {
	t.Helper()
	dir, _ := copyQuickstart(t)
	keys := filepath.Join(dir, "keys")
	keygen(t, keys)
	raw := readFile(t, filepath.Join(dnssecDir, "meridian.toml"))
	raw = replaceOnce(t, raw, `file = "../quickstart/example.test.zone"`, `file = "example.test.zone"`)
	raw = replaceOnce(t, raw, `format = "text"`, `format = "json"`)
	raw = replaceOnce(t, raw, `listen = "127.0.0.1:8053"`, `listen = "127.0.0.1:0"`)
	config := filepath.Join(dir, "meridian.toml")
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		text := replaceOnce(t, raw, `listen = ["127.0.0.1:1053"]`, fmt.Sprintf(`listen = ["127.0.0.1:%d"]`, port))
		if edit != nil {
			text = edit(text)
		}
		writeFile(t, config, text)
		inst := &instance{dir: dir, config: config, port: port}
		err := inst.start(t)
		if err == nil {
			return &signed{instance: inst, keys: keys}
		}
		if !strings.Contains(inst.stderr.String(), "address already in use") || attempt == 5 {
			t.Fatalf("meridian did not start: %v\nstderr:\n%s", err, inst.stderr.String())
		}
	}
}

// keygen makes a key for example.test in dir and returns its tag.
func keygen(t *testing.T, dir string) uint16 {
	t.Helper()
	out, errOut, code := runMeridian(t, "dnssec", "keygen", "-zone", "example.test", "-dir", dir)
	if code != 0 {
		t.Fatalf("meridian dnssec keygen: exit %d\n%s", code, errOut)
	}
	m := regexp.MustCompile(`key tag (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keygen printed no key tag:\n%s", out)
	}
	tag, _ := strconv.Atoi(m[1])
	return uint16(tag)
}

// anchor writes delv's trust-anchors clause for the key of tag and
// returns its path, and the DNSKEY's data for unbound.
func (s *signed) anchor(t *testing.T, tag uint16) (path, dnskey string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.keys, fmt.Sprintf("Kexample.test.+013+%05d.key", tag)))
	if len(files) != 1 {
		t.Fatalf("no key file of tag %d in %s", tag, s.keys)
	}
	for _, line := range strings.Split(readFile(t, files[0]), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && f[3] == "DNSKEY" {
			dnskey = strings.Join(f[4:7], " ") + " " + strings.Join(f[7:], "")
			path = filepath.Join(t.TempDir(), "anchor.conf")
			writeFile(t, path, fmt.Sprintf("trust-anchors { example.test. static-key %s %s %s %q; };\n", f[4], f[5], f[6], strings.Join(f[7:], "")))
			return path, dnskey
		}
	}
	t.Fatalf("no DNSKEY in %s", files[0])
	return "", ""
}

// tagOf returns the tag of the only key in s.keys.
func (s *signed) tagOf(t *testing.T) uint16 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.keys, "Kexample.test.+013+*.key"))
	if len(files) != 1 {
		t.Fatalf("want one key in %s, found %v", s.keys, files)
	}
	m := regexp.MustCompile(`\+(\d{5})\.key$`).FindStringSubmatch(files[0])
	tag, _ := strconv.Atoi(m[1])
	return uint16(tag)
}

// delv asks Meridian through delv, validating from anchor, with the
// query sent from source (127.0.0.1 when empty).
func (s *signed) delv(t *testing.T, anchor, source, name, qtype string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	args := []string{"@127.0.0.1", "-p", strconv.Itoa(s.port), "-a", anchor, "+root=example.test"}
	if source != "" {
		args = append(args, "-b", source)
	}
	cmd := exec.CommandContext(ctx, "delv", append(args, name, qtype)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // delv exits non-zero for a negative answer; its output says what it found
	return out.String()
}

// delvCases are the answers each validator must validate.
var delvCases = []struct {
	what, source, name, qtype string
	verdict                   string // the line delv prints
	records                   []string
}{
	{"static", "", "www.example.test", "A", "; fully validated", []string{"192.0.2.10", "192.0.2.11"}},
	{"dynamic us-east", "", "app.example.test", "A", "; fully validated", []string{"192.0.2.100", "192.0.2.101"}},
	{"dynamic eu-west", "127.0.0.2", "app.example.test", "A", "; fully validated", []string{"198.51.100.100"}},
	{"dynamic NODATA", "", "app.example.test", "AAAA", "; negative response, fully validated", nil},
	{"dynamic HTTPS us-east", "", "app.example.test", "HTTPS", "; fully validated", []string{"ipv4hint=192.0.2.100,192.0.2.101"}},
	{"dynamic HTTPS eu-west", "127.0.0.2", "app.example.test", "HTTPS", "; fully validated", []string{"ipv4hint=198.51.100.100"}},
	{"NXDOMAIN", "", "nope.example.test", "A", "; negative response, fully validated", nil},
	{"NODATA", "", "www.example.test", "MX", "; negative response, fully validated", nil},
	{"wildcard", "", "x.apps.example.test", "A", "; fully validated", []string{"192.0.2.80"}},
	{"CNAME", "", "shop.example.test", "A", "; fully validated", []string{"www.example.test.", "192.0.2.10"}},
	{"empty non-terminal", "", "path.to.example.test", "TXT", "; negative response, fully validated", nil},
	{"DNSKEY", "", "example.test", "DNSKEY", "; fully validated", nil},
	{"CDS", "", "example.test", "CDS", "; fully validated", nil},
}

func TestDNSSECValidatedByDelv(t *testing.T) {
	if _, err := exec.LookPath("delv"); err != nil {
		t.Fatal("delv not found (apt-get install bind9-dnsutils; .ci/run installs it)")
	}
	s := startSigned(t, nil)
	anchor, _ := s.anchor(t, s.tagOf(t))
	for _, tt := range delvCases {
		t.Run(tt.what, func(t *testing.T) {
			out := s.delv(t, anchor, tt.source, tt.name, tt.qtype)
			checkDelv(t, out, tt.verdict, tt.records)
		})
	}
	t.Run("a dynamic name's NODATA proof lists every type it answers", func(t *testing.T) {
		r := s.dig(t, "+dnssec", "+norec", "app.example.test", "MX")
		var nsec string
		for _, rr := range r.sections["AUTHORITY"] {
			if f := strings.Fields(rr); len(f) > 4 && f[0] == "app.example.test." && f[3] == "NSEC" {
				nsec = rr
			}
		}
		for _, typ := range []string{" A ", " HTTPS"} {
			if !strings.Contains(nsec+" ", typ) {
				t.Errorf("app.example.test's NSEC %q does not list%s: a validator would deny it (RFC 8198)\n%s", nsec, typ, r.out)
			}
		}
	})
	t.Run("a key that is not the zone's does not validate", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other")
		tag := keygen(t, other)
		o := &signed{keys: other}
		wrong, _ := o.anchor(t, tag)
		if out := s.delv(t, wrong, "", "www.example.test", "A"); strings.Contains(out, "fully validated") {
			t.Fatalf("validated with another key as the anchor:\n%s", out)
		}
	})
}

func checkDelv(t *testing.T, out, verdict string, records []string) {
	t.Helper()
	if !strings.Contains(out, verdict+"\n") {
		t.Fatalf("delv did not say %q:\n%s", verdict, out)
	}
	for _, r := range records {
		if !strings.Contains(out, r) {
			t.Errorf("delv's answer lacks %s:\n%s", r, out)
		}
	}
}

// startValidator runs unbound with the zone's key as trust anchor and a
// stub zone for example.test pointing at Meridian.
func startValidator(t *testing.T, meridianPort int, dnskey string) *unbound {
	t.Helper()
	if _, err := exec.LookPath("unbound"); err != nil {
		t.Fatal("unbound not found (apt-get install unbound; .ci/run installs it)")
	}
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`server:
	interface: 127.0.0.1@%d
	port: %d
	directory: "%s"
	chroot: ""
	username: ""
	pidfile: ""
	use-syslog: no
	logfile: ""
	do-daemonize: no
	verbosity: 1
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	local-zone: "test." nodefault
	module-config: "validator iterator"
	trust-anchor: "example.test. DNSKEY %s"
	qname-minimisation: no
	prefetch: no
stub-zone:
	name: "example.test"
	stub-addr: 127.0.0.1@%d
`, port, port, dir, dnskey, meridianPort)
	path := filepath.Join(dir, "unbound.conf")
	writeFile(t, path, conf)
	if out, err := exec.Command("unbound-checkconf", path).CombinedOutput(); err != nil {
		t.Fatalf("unbound-checkconf: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "unbound", "-d", "-c", path)
	var logs testkit.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("unbound output:\n%s", logs.String())
		}
	})
	u := &unbound{port: port}
	deadline := time.Now().Add(readyTimeout)
	for {
		if out, _, err := u.run(t, "+time=1", "+tries=1", "example.test", "SOA"); err == nil && parseDig(out).status == "NOERROR" {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("unbound did not answer within %v:\n%s", readyTimeout, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDNSSECValidatedByUnbound(t *testing.T) {
	s := startSigned(t, nil)
	_, dnskey := s.anchor(t, s.tagOf(t))
	u := startValidator(t, s.port, dnskey)
	for _, tt := range []struct {
		name, qtype, status string
		records             []string
	}{
		{"www.example.test", "A", "NOERROR", []string{"192.0.2.10", "192.0.2.11"}},
		{"app.example.test", "A", "NOERROR", []string{"192.0.2.100", "192.0.2.101"}},
		{"nope.example.test", "A", "NOERROR", nil}, // compact denial: NODATA with NXNAME
		{"www.example.test", "MX", "NOERROR", nil},
		{"x.apps.example.test", "A", "NOERROR", []string{"192.0.2.80"}},
		{"shop.example.test", "A", "NOERROR", []string{"192.0.2.10"}},
		{"path.to.example.test", "TXT", "NOERROR", nil},
	} {
		t.Run(tt.name+"/"+tt.qtype, func(t *testing.T) {
			r := u.dig(t, "+dnssec", tt.name, tt.qtype)
			if r.status != tt.status || !r.flag("ad") {
				t.Fatalf("status %s, flags %v: want %s with ad\n%s", r.status, r.flags, tt.status, r.out)
			}
			for _, want := range tt.records {
				if !strings.Contains(strings.Join(r.sections["ANSWER"], "\n"), want) {
					t.Errorf("answer lacks %s\n%s", want, r.out)
				}
			}
		})
	}
}

const dnskeyTTL = 2

// TestDNSSECRollover rolls the zone's CSK while delv and unbound, both
// anchored at the old key, keep validating: the new key is published,
// then signs, then the old one goes.
func TestDNSSECRollover(t *testing.T) {
	// The DNSKEY RRset's TTL is the zone's default_ttl (the zone file's
	// records have their own $TTL): 2 s, so the wait of step 2 is short.
	s := startSigned(t, func(c string) string {
		return replaceOnce(t, c, `file = "example.test.zone"`, "file = \"example.test.zone\"\ndefault_ttl = "+strconv.Itoa(dnskeyTTL))
	})
	old := s.tagOf(t)
	oldAnchor, oldKey := s.anchor(t, old)
	u := startValidator(t, s.port, oldKey)
	reloads := 0
	hup := func(t *testing.T, outcome string) {
		t.Helper()
		have := len(s.logsWithMsg(outcome))
		s.signal(t, syscall.SIGHUP)
		s.waitLog(t, outcome, have)
		reloads++
	}
	validated := func(t *testing.T, anchor, name string, signer uint16) {
		t.Helper()
		out := s.delv(t, anchor, "", name, "A")
		checkDelv(t, out, "; fully validated", nil)
		if !strings.Contains(out, fmt.Sprintf(" %d example.test. ", signer)) {
			t.Errorf("want a signature of key %d:\n%s", signer, out)
		}
		if r := u.dig(t, "+dnssec", name, "A"); r.status != "NOERROR" || !r.flag("ad") {
			t.Errorf("unbound: status %s, flags %v\n%s", r.status, r.flags, r.out)
		}
	}
	validated(t, oldAnchor, "www.example.test", old)

	// 1. Pre-publish: the new key is in the DNSKEY RRset, the old one signs.
	time.Sleep(1100 * time.Millisecond) // the new key's Created second is later
	next := keygen(t, s.keys)
	hup(t, "reloaded")
	newAnchor, _ := s.anchor(t, next)
	if out := s.delv(t, oldAnchor, "", "example.test", "DNSKEY"); !strings.Contains(out, fmt.Sprintf("key id = %d", next)) {
		t.Fatalf("the new key %d is not published:\n%s", next, out)
	}
	validated(t, oldAnchor, "app.example.test", old)
	validated(t, newAnchor, "app.example.test", old)
	// Resolvers that fetched the DNSKEY RRset before hold it for its TTL:
	// the new key may sign only once they all have it.
	time.Sleep(time.Duration(dnskeyTTL+1) * time.Second)

	// 2. The new key signs; the old one is still published and still
	// signs the DNSKEY RRset, so the old anchor leads to the new key.
	cfg := readFile(t, s.config)
	writeFile(t, s.config, strings.Replace(cfg, `refresh = "7d" }`, fmt.Sprintf(`refresh = "7d", active_key = %d }`, next), 1))
	hup(t, "reloaded")
	validated(t, oldAnchor, "mail.example.test", next)
	validated(t, newAnchor, "mail.example.test", next)
	// 3. The old key goes; the new anchor (the parent's new DS) validates.
	for _, ext := range []string{".key", ".private"} {
		if err := os.Remove(filepath.Join(s.keys, fmt.Sprintf("Kexample.test.+013+%05d%s", old, ext))); err != nil {
			t.Fatal(err)
		}
	}
	hup(t, "reloaded")
	checkDelv(t, s.delv(t, newAnchor, "", "ns1.example.test", "A"), "; fully validated", nil)
	if out := s.delv(t, oldAnchor, "", "ns2.example.test", "A"); strings.Contains(out, "fully validated") {
		t.Errorf("validated from the removed key:\n%s", out)
	}
}

// TestDNSSECBadKeys: keys that cannot be used fail meridian check with
// the file, line and key named, and fail a reload while the signed zone
// keeps serving with the keys it had.
func TestDNSSECBadKeys(t *testing.T) {
	s := startSigned(t, nil)
	anchor, _ := s.anchor(t, s.tagOf(t))
	good := readFile(t, s.config)
	privates, _ := filepath.Glob(filepath.Join(s.keys, "*.private"))
	other := filepath.Join(t.TempDir(), "other")
	if _, errOut, code := runMeridian(t, "dnssec", "keygen", "-zone", "other.test", "-dir", other); code != 0 {
		t.Fatal(errOut)
	}
	for _, tt := range []struct {
		what   string
		break_ func(t *testing.T) // makes the configuration bad
		fix    func(t *testing.T)
		want   []string // in meridian check's error
	}{
		{"missing key folder",
			func(t *testing.T) {
				writeFile(t, s.config, strings.Replace(good, `key_dir = "keys"`, `key_dir = "nokeys"`, 1))
			},
			func(t *testing.T) { writeFile(t, s.config, good) },
			[]string{"meridian.toml:", "zone[0].dnssec.key_dir", "nokeys", "no such file or directory"}},
		{"private key readable by others",
			func(t *testing.T) { os.Chmod(privates[0], 0o644) },
			func(t *testing.T) { os.Chmod(privates[0], 0o600) },
			[]string{"zone[0].dnssec.key_dir", ".private", "readable or writable by group or others", "chmod 600"}},
		{"unreadable private key",
			func(t *testing.T) { os.Rename(privates[0], privates[0]+".moved") },
			func(t *testing.T) { os.Rename(privates[0]+".moved", privates[0]) },
			[]string{"zone[0].dnssec.key_dir", "private key", "no such file or directory"}},
		{"unsupported algorithm",
			func(t *testing.T) {
				writeFile(t, s.config, strings.Replace(good, `algorithm = "ecdsap256sha256"`, `algorithm = "rsasha256"`, 1))
			},
			func(t *testing.T) { writeFile(t, s.config, good) },
			[]string{"zone[0].dnssec.algorithm", `"rsasha256" is not supported`}},
		{"key of another zone",
			func(t *testing.T) {
				files, _ := filepath.Glob(filepath.Join(other, "*"))
				for _, f := range files {
					b, _ := os.ReadFile(f)
					name := strings.Replace(filepath.Base(f), "Kother.test.", "Kexample.test.", 1)
					if err := os.WriteFile(filepath.Join(s.keys, name), b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			},
			func(t *testing.T) {
				files, _ := filepath.Glob(filepath.Join(other, "*"))
				for _, f := range files {
					os.Remove(filepath.Join(s.keys, strings.Replace(filepath.Base(f), "Kother.test.", "Kexample.test.", 1)))
				}
			},
			[]string{"zone[0].dnssec.key_dir", "key belongs to another zone", "for other.test."}},
		{"active key not in the folder",
			func(t *testing.T) {
				writeFile(t, s.config, strings.Replace(good, `refresh = "7d" }`, `refresh = "7d", active_key = 1 }`, 1))
			},
			func(t *testing.T) { writeFile(t, s.config, good) },
			[]string{"zone[0].dnssec.active_key", "active_key names no key in key_dir: 1"}},
	} {
		t.Run(tt.what, func(t *testing.T) {
			tt.break_(t)
			defer tt.fix(t)
			_, errOut, code := runMeridian(t, "check", "-config", s.config)
			if code != 1 {
				t.Fatalf("meridian check: exit %d, want 1\n%s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("meridian check's error lacks %q:\n%s", w, errOut)
				}
			}
			have := len(s.logsWithMsg("reload failed"))
			s.signal(t, syscall.SIGHUP)
			s.waitLog(t, "reload failed", have)
			checkDelv(t, s.delv(t, anchor, "", "www.example.test", "A"), "; fully validated", []string{"192.0.2.10"})
			checkDelv(t, s.delv(t, anchor, "127.0.0.2", "app.example.test", "A"), "; fully validated", []string{"198.51.100.100"})
		})
	}
}

// TestDNSSECAPIAndMetrics: /api/v1/zones shows the signed zone's keys and
// signature cache, /metrics its signer's metrics, and every metric the
// meridian-dnssec alert group names is exported.
func TestDNSSECAPIAndMetrics(t *testing.T) {
	s := startSigned(t, nil)
	tag := s.tagOf(t)
	anchor, _ := s.anchor(t, tag)
	checkDelv(t, s.delv(t, anchor, "", "www.example.test", "A"), "; fully validated", nil)
	base := "http://" + s.waitLog(t, "admin API", 0).str("addr")
	code, body := adminCall(t, "GET", base+"/api/v1/zones", "")
	if code != 200 {
		t.Fatalf("GET /api/v1/zones: %d %s", code, body)
	}
	var zonesOut []struct {
		Name   string
		DNSSEC *struct {
			Keys []struct {
				Tag       uint16
				Algorithm string
				State     string
			}
			CachedRRsets  int        `json:"cached_rrsets"`
			Made          int        `json:"signatures_made"`
			SoonestExpiry *time.Time `json:"soonest_expiry"`
		}
	}
	if err := json.Unmarshal([]byte(body), &zonesOut); err != nil || len(zonesOut) != 1 || zonesOut[0].DNSSEC == nil {
		t.Fatalf("zones %s (%v)", body, err)
	}
	d := zonesOut[0].DNSSEC
	if len(d.Keys) != 1 || d.Keys[0].Tag != tag || d.Keys[0].State != "active" || d.Keys[0].Algorithm != "ecdsap256sha256" {
		t.Errorf("keys %+v, want %d active", d.Keys, tag)
	}
	if d.CachedRRsets == 0 || d.Made == 0 || d.SoonestExpiry == nil {
		t.Fatalf("signature cache %s", body)
	}
	if left := time.Until(*d.SoonestExpiry); left < 13*24*time.Hour || left > 15*24*time.Hour {
		t.Errorf("soonest expiry in %v, want about 14 days", left)
	}
	_, page := adminCall(t, "GET", base+"/metrics", "")
	for _, m := range []string{"meridian_dnssec_signatures_made_total", "meridian_dnssec_cache_hits_total",
		"meridian_dnssec_cached_rrsets", "meridian_dnssec_signature_expiry_seconds"} {
		if !strings.Contains(page, "\n"+m+`{zone="example.test."}`) {
			t.Errorf("/metrics lacks %s for the zone", m)
		}
	}
	out, errOut, code := runMeridian(t, "explain", "-config", s.config, "-client", "198.51.100.7", "-no-checks", "app.example.test", "A")
	if code != 0 || !strings.Contains(out, "dnssec    zone example.test. is signed") || !strings.Contains(out, fmt.Sprintf("%d ecdsap256sha256 active", tag)) ||
		!strings.Contains(out, fmt.Sprintf("signed by key %d", tag)) {
		t.Errorf("meridian explain: exit %d\n%s%s", code, out, errOut)
	}
	rules := readFile(t, filepath.Join("..", "examples", "prometheus", "meridian-alerts.yml"))
	_, group, ok := strings.Cut(rules, "- name: meridian-dnssec")
	if !ok {
		t.Fatal("no meridian-dnssec alert group")
	}
	names := regexp.MustCompile(`expr: .*?(meridian_[a-z_]+)`).FindAllStringSubmatch(group, -1)
	if len(names) == 0 {
		t.Fatal("the meridian-dnssec group names no metric")
	}
	for _, n := range names {
		if !strings.Contains(page, "# TYPE "+n[1]+" ") {
			t.Errorf("alert metric %s is not exported", n[1])
		}
	}
}
