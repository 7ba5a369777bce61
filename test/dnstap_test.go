package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dnstappb "github.com/dnstap/golang-dnstap"
	framestream "github.com/farsightsec/golang-framestream"
	"github.com/meridian-gslb/meridian/internal/testkit"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"
)

// withDnstap adds a [server.dnstap] table with the given lines.
func withDnstap(t *testing.T, lines string) func(string) string {
	return func(config string) string {
		return replaceOnce(t, config, "[server.rrl]\n", "[server.dnstap]\n"+lines+"\n\n[server.rrl]\n")
	}
}

// dnstapQueries asks what TestDnstap then looks for in the frames: a
// dynamic A answer for eu-west's client, an HTTPS one for
// ap-northeast's, and a static name over TCP.
func dnstapQueries(t *testing.T, s *instance) {
	t.Helper()
	for _, args := range [][]string{
		{"+subnet=" + euWest.subnet, "app.example.test", "A"},
		{"+subnet=" + apNortheast.subnet, "app.example.test", "HTTPS"},
		{"+tcp", "www.example.test", "A"},
	} {
		if r := s.dig(t, append([]string{"+norec"}, args...)...); r.status != "NOERROR" {
			t.Fatalf("dig %v: %s", args, r.status)
		}
	}
}

// The AQ and AR lines dnstap-read prints for dnstapQueries, in order.
var dnstapLines = []*regexp.Regexp{
	regexp.MustCompile(`AQ 127\.0\.0\.1:\d+ -> \S+ UDP \d+b app\.example\.test/IN/A$`),
	regexp.MustCompile(`AR 127\.0\.0\.1:\d+ <- \S+ UDP \d+b app\.example\.test/IN/A$`),
	regexp.MustCompile(`AQ 127\.0\.0\.1:\d+ -> \S+ UDP \d+b app\.example\.test/IN/HTTPS$`),
	regexp.MustCompile(`AR 127\.0\.0\.1:\d+ <- \S+ UDP \d+b app\.example\.test/IN/HTTPS$`),
	regexp.MustCompile(`AQ 127\.0\.0\.1:\d+ -> \S+ TCP \d+b www\.example\.test/IN/A$`),
	regexp.MustCompile(`AR 127\.0\.0\.1:\d+ <- \S+ TCP \d+b www\.example\.test/IN/A$`),
}

// The decisions the responses carry in dnstap's extra field (dnstap-read
// does not print it), in order; "" for the static answer.
var dnstapDecisions = []string{
	"gslb record=app.example.test. type=A policy=geo region=eu-west outcome=answered fallback=false scope=24",
	"gslb record=app.example.test. type=HTTPS policy=geo region=ap-northeast outcome=answered fallback=false scope=24",
	"",
}

// checkDnstapFile reads a dnstap file with dnstap-read (BIND's) for the
// queries and responses, and decodes it for the decisions.
func checkDnstapFile(t *testing.T, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dnstap-read", path).CombinedOutput()
	if err != nil {
		t.Fatalf("dnstap-read %s: %v\n%s", path, err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasSuffix(l, " example.test/IN/SOA") { // waitReady's queries
			lines = append(lines, l)
		}
	}
	if len(lines) != len(dnstapLines) {
		t.Fatalf("dnstap-read printed %d messages, want %d:\n%s", len(lines), len(dnstapLines), out)
	}
	for i, re := range dnstapLines {
		if !re.MatchString(lines[i]) {
			t.Errorf("message %d: %q, want %v", i, lines[i], re)
		}
	}
	yaml, err := exec.CommandContext(ctx, "dnstap-read", "-y", path).CombinedOutput()
	if err != nil || !strings.Contains(string(yaml), "identity: e2e-node") ||
		!strings.Contains(string(yaml), `app.example.test. 30 IN HTTPS 1 . alpn="h2" port=443 ipv4hint=203.0.113.100`) {
		t.Errorf("dnstap-read -y: %v, want identity e2e-node and the HTTPS answer:\n%s", err, yaml)
	}
	var got []string
	for _, f := range readDnstap(t, path) {
		var m dns.Msg
		if err := m.Unpack(f.GetMessage().GetQueryMessage()); err != nil {
			t.Fatalf("a query in the frames does not unpack: %v", err)
		}
		if f.GetMessage().GetType() == dnstappb.Message_AUTH_RESPONSE && m.Question[0].Qtype != dns.TypeSOA {
			got = append(got, string(f.GetExtra()))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(dnstapDecisions) {
		t.Errorf("decisions in extra:\n got %q\nwant %q", got, dnstapDecisions)
	}
}

// readDnstap decodes the frames of a dnstap file.
func readDnstap(t *testing.T, path string) []*dnstappb.Dnstap {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := framestream.NewReader(f, &framestream.ReaderOptions{ContentTypes: [][]byte{dnstappb.FSContentType}})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []*dnstappb.Dnstap
	buf := make([]byte, 1<<16)
	for {
		n, err := r.ReadFrame(buf)
		if errors.Is(err, io.EOF) || errors.Is(err, framestream.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		d := new(dnstappb.Dnstap)
		if err := proto.Unmarshal(buf[:n], d); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, d)
	}
}

// startCapture runs fstrm_capture on a Unix socket, writing to out, and
// returns a function that stops it (SIGTERM: it closes the file).
func startCapture(t *testing.T, sock, out string) (stop func()) {
	t.Helper()
	cmd := exec.Command("fstrm_capture", "-t", "protobuf:dnstap.Dnstap", "-u", sock, "-w", out)
	var stderr testkit.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(exitTimeout):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("fstrm_capture did not stop on SIGTERM:\n%s", stderr.String())
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(readyTimeout)
	for {
		if _, err := os.Stat(sock); err == nil {
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("fstrm_capture made no socket in %v:\n%s", readyTimeout, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDnstap logs the quickstart's answers with dnstap, to a file and to
// fstrm_capture over a Unix socket, and reads them back with BIND's
// dnstap-read: queries, responses, and the decisions in the extra field.
func TestDnstap(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs meridian")
	}
	t.Parallel()
	t.Run("file", func(t *testing.T) {
		t.Parallel()
		ports := newHealthPorts(t, quickstartTargets)
		s := startGSLB(t, ports, withDnstap(t, `file = "tap.dnstap"`))
		waitChecked(t, s, ports)
		dnstapQueries(t, s)
		s.signal(t, syscall.SIGTERM) // the file is whole once the server stopped
		if code := s.waitExit(t); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		checkDnstapFile(t, filepath.Join(s.dir, "tap.dnstap"))
	})
	t.Run("fstrm_capture", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		sock, out := filepath.Join(dir, "tap.sock"), filepath.Join(dir, "captured.dnstap")
		stop := startCapture(t, sock, out)
		ports := newHealthPorts(t, quickstartTargets)
		s := startGSLB(t, ports, withDnstap(t, fmt.Sprintf("socket = %q", sock)))
		waitChecked(t, s, ports)
		dnstapQueries(t, s)
		s.signal(t, syscall.SIGTERM)
		if code := s.waitExit(t); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		stop()
		checkDnstapFile(t, out)
	})
}

// TestDnstapDeadCollector points dnstap at a socket nobody listens on:
// every query is answered, the frames are counted as dropped, and once a
// collector listens there the server reconnects and frames flow.
func TestDnstapDeadCollector(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs meridian")
	}
	t.Parallel()
	dir := t.TempDir()
	sock, out := filepath.Join(dir, "tap.sock"), filepath.Join(dir, "captured.dnstap")
	s := startQuickstartWith(t, withDnstap(t, fmt.Sprintf("socket = %q\nbuffer = 8\nreconnect_interval = \"100ms\"", sock)))
	base := "http://" + s.waitLog(t, "admin API", 0).str("addr")
	frames := func(result string) float64 {
		_, page := adminCall(t, "GET", base+"/metrics", "")
		return metric(page, fmt.Sprintf(`meridian_dnstap_frames_total{result=%q}`, result))
	}
	for i := range 20 {
		r := s.dig(t, "+norec", "+time=2", "+tries=1", "+subnet="+euWest.subnet, "app.example.test", "A")
		if r.status != "NOERROR" || len(r.sections["ANSWER"]) != 1 {
			t.Fatalf("query %d with no collector: %s %v", i, r.status, r.sections["ANSWER"])
		}
	}
	if d := frames("dropped"); d < 40 {
		t.Errorf("dropped %v frames of 20 queries, want 40 (a query and a response each)", d)
	}
	if s := frames("sent"); s != 0 {
		t.Errorf("sent %v frames with no collector", s)
	}

	stop := startCapture(t, sock, out)
	deadline := time.Now().Add(healthTimeout)
	for frames("sent") == 0 {
		s.dig(t, "+norec", "www.example.test", "A")
		if time.Now().After(deadline) {
			t.Fatalf("no frame sent %v after the collector came", healthTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.signal(t, syscall.SIGTERM)
	s.waitExit(t)
	stop()
	if len(readDnstap(t, out)) == 0 {
		t.Errorf("the collector captured no frame")
	}
	noErrors(t, s)
}
