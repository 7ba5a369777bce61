package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// The lines docs/transfers.md tells a reader to add to the quickstart,
// and its demo key: the test adds the same lines, so the page's dig
// commands are what the test runs.
const (
	xfrKeys = "[transfer]\nkey_files = [\"transfer.key\"]\n"
	xfrZone = "serial = \"increment\"\n[zone.transfer]\nallow = [{ prefix = \"127.0.0.0/8\", key = \"quickstart-xfr\" }]\n"
	xfrKey  = "hmac-sha256:quickstart-xfr:jDVOTDHP5684J83vDfpPpkiAQzopBIBpiugkYrWqnQE="
	// xfrWait bounds how long NSD may take to transfer the zone after it
	// starts or after a NOTIFY: seconds in practice, more on a loaded machine.
	xfrWait = 20 * time.Second
)

// xfrQuickstart is the quickstart with transfers on as docs/transfers.md
// says, and NOTIFY sent to the notify addresses.
func xfrQuickstart(t *testing.T, notify ...string) func(string) string {
	doc := readFile(t, filepath.Join("..", "docs", "transfers.md"))
	for _, s := range []string{xfrKeys, xfrZone, strings.TrimPrefix(xfrKey, "hmac-sha256:")} {
		if !strings.Contains(doc, s) {
			t.Fatalf("docs/transfers.md no longer shows\n%s\nwhich the test adds to the quickstart", s)
		}
	}
	return func(c string) string {
		c = replaceOnce(t, c, "[[zone]]\n", xfrKeys+"\n[[zone]]\n")
		zone := xfrZone + fmt.Sprintf("notify = [\"%s\"]\nnotify_key = \"quickstart-xfr\"\n", strings.Join(notify, `", "`))
		return replaceOnce(t, c, "  \"_https._tcp 300 IN SRV 10 5 443 www\",\n]\n", "  \"_https._tcp 300 IN SRV 10 5 443 www\",\n]\n"+zone)
	}
}

// TestSecondaryNSD runs NSD as a secondary of the quickstart zone, with
// the TSIG key: NSD transfers the zone and answers from it; a change to
// the zone file, reloaded with SIGHUP, reaches NSD through NOTIFY and an
// IXFR within seconds; an AXFR without the key is refused.
func TestSecondaryNSD(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	if _, err := exec.LookPath("nsd"); err != nil {
		t.Fatal("nsd is not installed (apt-get install nsd; .ci/run installs it)")
	}
	nsdPort := freePort(t)
	// A second secondary that never answers: it must slow neither the
	// reload nor NSD's NOTIFY.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	s := startQuickstartWith(t, xfrQuickstart(t, fmt.Sprintf("127.0.0.1:%d", nsdPort), dead.LocalAddr().String()))
	if err := s.waitReady(t); err != nil {
		t.Fatal(err)
	}
	nsd := startNSD(t, nsdPort, s.port)

	// The first transfer: NSD asks at start.
	nsd.waitFor(t, "www.example.test", "A", "192.0.2.10", "192.0.2.11")
	if got := nsd.serial(t); got != 2026112501 {
		t.Fatalf("NSD serves serial %d, want the file's 2026112501", got)
	}

	// A change, reloaded: the serial is incremented (serial = "increment"),
	// NOTIFY tells NSD, which asks for IXFR.
	zone := filepath.Join(s.dir, "example.test.zone")
	writeFile(t, zone, replaceOnce(t, readFile(t, zone), "www          IN A     192.0.2.11", "www          IN A     192.0.2.12"))
	reloads := len(s.logsWithMsg("reloaded"))
	start := time.Now()
	s.signal(t, syscall.SIGHUP)
	s.waitLog(t, "reloaded", reloads)
	nsd.waitFor(t, "www.example.test", "A", "192.0.2.10", "192.0.2.12")
	t.Logf("NSD served the change %v after SIGHUP", time.Since(start).Round(time.Millisecond))
	if got := nsd.serial(t); got != 2026112502 {
		t.Errorf("NSD serves serial %d after the change, want 2026112502", got)
	}
	if !s.servedIXFR() {
		t.Errorf("no IXFR in Meridian's log:\n%v", s.logsWithMsg("transfer"))
	}
	if len(s.logsWithMsg("notify acknowledged")) == 0 {
		t.Errorf("no NOTIFY acknowledged in Meridian's log")
	}
	// The reload was done before the dead secondary's first NOTIFY of the
	// new serial timed out: NOTIFY does not hold reloads up.
	deadline := time.Now().Add(xfrWait)
	for order := ""; !strings.Contains(order, "dead"); {
		order = ""
		for _, e := range s.logs() {
			switch {
			case e.str("msg") == "reloaded":
				order += "reloaded "
			case e.str("msg") == "notify not acknowledged; retrying" && e["serial"] == float64(2026112502) && e.str("target") == dead.LocalAddr().String():
				order += "dead "
			}
		}
		if strings.Contains(order, "dead") && !strings.HasPrefix(order, "reloaded dead") {
			t.Errorf("log order %q: the reload waited for a NOTIFY", order)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unanswered NOTIFY was not logged within %v", xfrWait)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The documented commands: with the key the zone, without it nothing.
	out, _, err := s.runDig(t, "-y", xfrKey, "example.test", "AXFR")
	if err != nil || !strings.Contains(out, "www.example.test.\t300\tIN\tA\t192.0.2.12") || strings.Contains(out, "Transfer failed") {
		t.Errorf("signed AXFR: %v\n%s", err, out)
	}
	out, _, _ = s.runDig(t, "example.test", "AXFR")
	if !strings.Contains(out, "Transfer failed") || strings.Contains(out, "192.0.2.12") {
		t.Errorf("unsigned AXFR was not refused:\n%s", out)
	}
	refused := s.logsWithMsg("transfer refused")
	if len(refused) == 0 || refused[len(refused)-1].str("rcode") != "REFUSED" {
		t.Errorf("refused AXFR not logged with REFUSED: %v", refused)
	}
}

// servedIXFR reports whether the log shows an IXFR answered with changes.
func (s *instance) servedIXFR() bool {
	for _, e := range s.logsWithMsg("transfer served") {
		if e.str("type") == "ixfr" && e.str("served") == "ixfr" {
			return true
		}
	}
	return false
}

// nsdServer is an NSD started for a test.
type nsdServer struct {
	port int
	logs *testkit.Buffer
}

// startNSD runs NSD on loopback at port as a secondary of example.test,
// transferring from Meridian at primary with the quickstart's key and
// taking NOTIFY from it.
func startNSD(t *testing.T, port, primary int) *nsdServer {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf(`server:
	ip-address: 127.0.0.1
	port: %[1]d
	do-ip6: no
	username: ""
	chroot: ""
	zonesdir: "%[2]s"
	pidfile: "%[2]s/nsd.pid"
	xfrdfile: "%[2]s/xfrd.state"
	xfrdir: "%[2]s"
	zonelistfile: "%[2]s/zone.list"
	database: ""
	logfile: "%[2]s/nsd.log"
	verbosity: 2
	server-count: 1
	xfrd-reload-timeout: 0
remote-control:
	control-enable: no
key:
	name: "quickstart-xfr"
	algorithm: hmac-sha256
	secret: "%[3]s"
zone:
	name: "example.test"
	zonefile: "example.test.zone"
	request-xfr: 127.0.0.1@%[4]d quickstart-xfr
	allow-notify: 127.0.0.1 quickstart-xfr
`, port, dir, xfrKey[strings.LastIndex(xfrKey, ":")+1:], primary)
	path := filepath.Join(dir, "nsd.conf")
	writeFile(t, path, conf)
	if out, err := exec.Command("nsd-checkconf", path).CombinedOutput(); err != nil {
		t.Fatalf("nsd-checkconf: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "nsd", "-d", "-c", path)
	logs := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = exitTimeout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("nsd output:\n%s\nnsd.log:\n%s", logs.String(), readFileOr(filepath.Join(dir, "nsd.log")))
		}
	})
	return &nsdServer{port: port, logs: logs}
}

// waitFor polls NSD until it answers name/qtype with exactly want.
func (n *nsdServer) waitFor(t *testing.T, name, qtype string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(xfrWait)
	var last string
	for {
		out, _, err := runDigAt(n.port, "+time=1", "+tries=1", "+norec", name, qtype)
		if err == nil {
			r := parseDig(out)
			last = out
			if r.status == "NOERROR" && sameRecords(addresses(r), want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("NSD did not answer %s %s with %v within %v; last answer:\n%s", name, qtype, want, xfrWait, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serial returns the serial of the SOA NSD serves for example.test.
func (n *nsdServer) serial(t *testing.T) uint32 {
	t.Helper()
	out, _, err := runDigAt(n.port, "+short", "+norec", "example.test", "SOA")
	if err != nil {
		t.Fatalf("dig SOA @nsd: %v", err)
	}
	var serial uint32
	f := strings.Fields(out)
	if len(f) < 3 {
		t.Fatalf("dig SOA @nsd: %q", out)
	}
	fmt.Sscan(f[2], &serial)
	return serial
}

// readFileOr returns the file's content, or why it could not be read.
func readFileOr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
