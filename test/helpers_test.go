package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-gslb/meridian/internal/testkit"
)

// Bounds on every wait, generous enough for a loaded CI machine yet short
// enough that a hung server fails the test instead of the whole run.
const (
	buildTimeout   = 5 * time.Minute
	readyTimeout   = 15 * time.Second
	reloadTimeout  = 10 * time.Second
	exitTimeout    = 10 * time.Second
	commandTimeout = 20 * time.Second
)

var (
	// binary is the meridian built once by TestMain.
	binary string
	// digHome is an empty HOME for dig, so a developer's ~/.digrc cannot
	// change the output the tests parse.
	digHome string
)

// quickstartDir holds the example configuration the tests serve.
var quickstartDir = filepath.Join("..", "examples", "quickstart")

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		// The quick local tier (make test-short) leaves out the tests that
		// build and run the binary; make test and CI run them.
		fmt.Println("e2e: -short: the end-to-end tests are left out")
		return 0
	}
	// dig is what users query with; without it these tests prove nothing,
	// so its absence is a failure rather than a skip that looks green.
	if _, err := exec.LookPath("dig"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: dig not found (apt-get install dnsutils):", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "meridian-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	digHome = filepath.Join(dir, "home")
	if err := os.Mkdir(digHome, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	binary = filepath.Join(dir, "meridian")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/meridian")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/meridian: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// instance is one meridian serve process and the folder it serves from.
type instance struct {
	dir    string // holds meridian.toml and the zone files
	config string // path of meridian.toml
	port   int
	flags  []string // serve's flags after -config
	cmd    *exec.Cmd
	stderr *testkit.Buffer
	done   chan struct{} // closed once the process has exited
}

// copyQuickstart copies the quickstart's zone files into a fresh folder and
// writes its meridian.toml there, changed only where the test must: a free
// port, a known identity, and JSON logs the test can read reliably.
func copyQuickstart(t *testing.T) (dir string, configFor func(port int) string) {
	t.Helper()
	dir = t.TempDir()
	entries, err := os.ReadDir(quickstartDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "meridian.toml" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(quickstartDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, e.Name()), string(data))
	}
	raw, err := os.ReadFile(filepath.Join(quickstartDir, "meridian.toml"))
	if err != nil {
		t.Fatal(err)
	}
	base := string(raw)
	base = replaceOnce(t, base, `identity = "meridian-quickstart"`, `identity = "e2e-node"`)
	base = replaceOnce(t, base, `format = "text"`, `format = "json"`)
	// A short grace keeps a broken shutdown from outliving exitTimeout.
	base = replaceOnce(t, base, "[server]\n", "[server]\nshutdown_timeout = \"2s\"\n")
	// Tests send bursts from 127.0.0.1: rate limiting stays off, but in
	// the tests of rate limiting itself (rrlOn puts it back).
	base = replaceOnce(t, base, "[server.rrl]\nenabled = true\n", "[server.rrl]\nenabled = false\n")
	// Tests run side by side: the admin API takes any free port.
	base = replaceOnce(t, base, `listen = "127.0.0.1:8053"`, `listen = "127.0.0.1:0"`)
	return dir, func(port int) string {
		return replaceOnce(t, base, `listen = ["127.0.0.1:1053"]`, fmt.Sprintf(`listen = ["127.0.0.1:%d"]`, port))
	}
}

// replaceOnce replaces old, which must occur exactly once: when the example
// files change, the test says so instead of silently testing something else.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("expected %q exactly once, found it %d times in:\n%s", old, n, s)
	}
	return strings.Replace(s, old, new, 1)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// freePort returns a port that was free on 127.0.0.1 for both UDP and TCP a
// moment ago. Another process may still take it before meridian binds, which
// startQuickstart handles by trying again.
func freePort(t *testing.T) int {
	t.Helper()
	return testkit.FreePort(t, "127.0.0.1")
}

// startQuickstart serves a copy of the quickstart and returns once the
// server answers queries.
func startQuickstart(t *testing.T) *instance {
	t.Helper()
	return startQuickstartWith(t, nil)
}

// startQuickstartWith is startQuickstart with the configuration passed
// through edit (when not nil) before it is written.
func startQuickstartWith(t *testing.T, edit func(config string) string, prepare ...func(dir string)) *instance {
	t.Helper()
	return startQuickstartFlags(t, nil, edit, prepare...)
}

// startQuickstartFlags is startQuickstartWith with more flags for serve
// after -config (make run's -admin-token-file).
func startQuickstartFlags(t *testing.T, flags []string, edit func(config string) string, prepare ...func(dir string)) *instance {
	t.Helper()
	dir, configFor := copyQuickstart(t)
	for _, p := range prepare {
		p(dir) // files the edited configuration names, written before it starts
	}
	config := filepath.Join(dir, "meridian.toml")
	const attempts = 5
	for i := 1; ; i++ {
		port := freePort(t)
		text := configFor(port)
		if edit != nil {
			text = edit(text)
		}
		writeFile(t, config, text)
		inst := &instance{dir: dir, config: config, port: port, flags: flags}
		err := inst.start(t)
		if err == nil {
			return inst
		}
		if strings.Contains(inst.stderr.String(), "address already in use") && i < attempts {
			t.Logf("port %d was taken before meridian bound it; trying another", port)
			continue
		}
		t.Fatalf("meridian did not start: %v\nstderr:\n%s", err, inst.stderr.String())
	}
}

func (s *instance) start(t *testing.T) error {
	t.Helper()
	s.stderr = &testkit.Buffer{}
	s.done = make(chan struct{})
	s.cmd = exec.Command(binary, append([]string{"serve", "-config", s.config}, s.flags...)...)
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	s.cmd.WaitDelay = exitTimeout
	if err := s.cmd.Start(); err != nil {
		return err
	}
	go func() {
		_ = s.cmd.Wait() // the exit status is read from ProcessState
		close(s.done)
	}()
	t.Cleanup(func() {
		if !s.exited() {
			_ = s.cmd.Process.Kill()
			select {
			case <-s.done:
			case <-time.After(exitTimeout):
				t.Errorf("meridian (pid %d) still running %v after SIGKILL", s.cmd.Process.Pid, exitTimeout)
			}
		}
		if t.Failed() {
			t.Logf("meridian stderr:\n%s", s.stderr.String())
		}
	})
	return s.waitReady(t)
}

func (s *instance) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// waitReady queries until the server answers for its zone, or fails once
// the process exits or the deadline passes.
func (s *instance) waitReady(t *testing.T) error {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		if s.exited() {
			return fmt.Errorf("exited before answering: %v", s.cmd.ProcessState)
		}
		// Until meridian logs that it bound its sockets, an answer could come
		// from whatever else holds the port.
		var out string
		var err error
		if len(s.logsWithMsg("serving")) > 0 {
			out, _, err = s.runDig(t, "+time=1", "+tries=1", "+norec", "example.test", "SOA")
			if err == nil && parseDig(out).status == "NOERROR" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v (last dig: %v)\n%s", readyTimeout, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signal sends sig to the server.
func (s *instance) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v: %v", sig, err)
	}
}

// waitExit waits, bounded, for the process to end and returns its exit code.
func (s *instance) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(exitTimeout):
		t.Fatalf("meridian still running %v after being asked to stop", exitTimeout)
		return -1
	}
}

// logEntry is one line of meridian's JSON log.
type logEntry map[string]any

func (e logEntry) str(key string) string {
	s, _ := e[key].(string)
	return s
}

// logs returns the JSON log lines written so far; anything else on stderr
// (there should be nothing) is left to the failure output.
func (s *instance) logs() []logEntry {
	var out []logEntry
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// logsWithMsg returns the entries whose message starts with prefix.
func (s *instance) logsWithMsg(prefix string) []logEntry {
	var out []logEntry
	for _, e := range s.logs() {
		if strings.HasPrefix(e.str("msg"), prefix) {
			out = append(out, e)
		}
	}
	return out
}

// waitLog polls the log until more than have entries start with prefix, and
// returns the newest. Signals are handled asynchronously, so the log line is
// the only sign the server has acted on one.
func (s *instance) waitLog(t *testing.T, prefix string, have int) logEntry {
	t.Helper()
	deadline := time.Now().Add(reloadTimeout)
	for {
		if got := s.logsWithMsg(prefix); len(got) > have {
			return got[len(got)-1]
		}
		if s.exited() {
			t.Fatalf("meridian exited while waiting for log %q", prefix)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log entry %q within %v", prefix, reloadTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runDig runs dig against the server and returns its stdout and stderr.
func (s *instance) runDig(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return runDigAt(s.port, args...)
}

// runDigAt runs dig against 127.0.0.1 at port.
func runDigAt(port int, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	full := append([]string{"@127.0.0.1", "-p", strconv.Itoa(port)}, args...)
	cmd := exec.CommandContext(ctx, "dig", full...)
	cmd.Env = append(os.Environ(), "HOME="+digHome)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// dig runs dig and parses the reply it printed, failing the test when dig
// got none (dig exits non-zero only then, not for error rcodes).
func (s *instance) dig(t *testing.T, args ...string) *digReply {
	t.Helper()
	out, errOut, err := s.runDig(t, args...)
	if err != nil {
		t.Fatalf("dig %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	r := parseDig(out)
	if r.status == "" {
		t.Fatalf("dig %s printed no reply header:\n%s", strings.Join(args, " "), out)
	}
	return r
}

// digReply is what dig printed for the last message it received.
type digReply struct {
	out         string // everything dig printed, for failure messages
	opcode      string
	status      string
	flags       []string
	counts      map[string]int // QUERY, ANSWER, AUTHORITY, ADDITIONAL
	opt         bool           // an OPT PSEUDOSECTION was printed
	ednsVersion int
	udpSize     int
	sections    map[string][]string // ANSWER, AUTHORITY, ADDITIONAL: records, whitespace normalised
}

func (r *digReply) flag(f string) bool { return slices.Contains(r.flags, f) }

var (
	headerRe = regexp.MustCompile(`->>HEADER<<- opcode: ([A-Z0-9]+), status: ([A-Z0-9]+), id: \d+`)
	flagsRe  = regexp.MustCompile(`^;; flags:([^;]*);(.*)$`)
	countRe  = regexp.MustCompile(`([A-Z]+): (\d+)`)
	ednsRe   = regexp.MustCompile(`^; EDNS: version: (\d+), flags:[^;]*; udp: (\d+)`)
	sectRe   = regexp.MustCompile(`^;; ([A-Z]+) SECTION:$`)
)

// parseDig reads dig's default presentation output. When dig printed more
// than one message (it does for some retries), the last one counts: it is
// what the user ends up with.
func parseDig(out string) *digReply {
	r := &digReply{out: out}
	section := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := headerRe.FindStringSubmatch(line); m != nil {
			*r = digReply{out: out, opcode: m[1], status: m[2], counts: map[string]int{}, sections: map[string][]string{}}
			section = ""
			continue
		}
		if r.status == "" {
			continue
		}
		if m := flagsRe.FindStringSubmatch(line); m != nil {
			r.flags = strings.Fields(m[1])
			for _, c := range countRe.FindAllStringSubmatch(m[2], -1) {
				r.counts[c[1]], _ = strconv.Atoi(c[2])
			}
			continue
		}
		if m := ednsRe.FindStringSubmatch(line); m != nil {
			r.opt = true
			r.ednsVersion, _ = strconv.Atoi(m[1])
			r.udpSize, _ = strconv.Atoi(m[2])
			continue
		}
		if m := sectRe.FindStringSubmatch(line); m != nil {
			section = m[1]
			continue
		}
		if strings.TrimSpace(line) == "" {
			section = ""
			continue
		}
		if strings.HasPrefix(line, ";") || section == "" || section == "QUESTION" {
			continue
		}
		r.sections[section] = append(r.sections[section], strings.Join(strings.Fields(line), " "))
	}
	return r
}

// sameRecords compares record lists as sets: RRset order on the wire is not
// significant.
func sameRecords(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

// runMeridian runs a short-lived meridian subcommand.
func runMeridian(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
	default:
		t.Fatalf("meridian %s: %v\nstderr:\n%s", strings.Join(args, " "), err, e.String())
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}
