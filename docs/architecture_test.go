package docs

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The module path, cut from every import path so that rules read as folders.
const module = "github.com/meridian-gslb/meridian"

// A room is a part of Meridian: the packages under its prefixes, and the
// rooms they may import (a room may always import itself). A package belongs
// to the room with the longest prefix that is the package or one of its
// ancestors, so a new subpackage (gslb/forward/upstream) falls under its
// parent's room without an edit, and a more specific room (gslb/forward)
// takes its subtree out of a wider one (gslb, the engine).
type room struct {
	name     string
	prefixes []string // module-relative folders
	may      []string // rooms it may import; "*" is every room but test and docs
	shared   bool     // a kit every room may import; it imports only itself
	holds    string   // for the page
}

// rooms is the rule set docs/architecture.md shows (between its
// <!-- rules --> markers, which TestArchitecturePage keeps equal to this).
var rooms = []room{
	{name: "zones", prefixes: []string{"zones"}, holds: "zone data and authoritative lookups"},
	{name: "dnssec", prefixes: []string{"zones/dnssec"}, may: []string{"zones"},
		holds: "DNSSEC: the zones' keys, online signing with a cache of signed RRsets, compact denial of existence"},
	{name: "geo", prefixes: []string{"geo"}, holds: "where a client is: CIDR rows, GeoIP databases, ECS partitions"},
	{name: "health", prefixes: []string{"gslb/health"},
		holds: "health itself: states, target IDs, and the store the checks and the cluster write and the engine reads"},
	{name: "probes", prefixes: []string{"probes"}, may: []string{"health"}, holds: "health checkers and their scheduler (rise, fall); the check spec"},
	{name: "engine", prefixes: []string{"gslb"}, may: []string{"geo", "zones", "probes", "health"},
		holds: "the decision engine and its pure parts (gslb/quorum): policies, the plan, drains, explain; no I/O"},
	{name: "config", prefixes: []string{"gslb/config"}, may: []string{"engine", "geo", "zones", "dnssec", "probes", "health", "dnsguard", "xfr", "dnstap"},
		holds: "meridian.toml: decoding, defaults, validation, building the engine's records"},
	{name: "checks", prefixes: []string{"gslb/checks"}, may: []string{"engine", "probes", "health"},
		holds: "a node's own checks feeding the engine; the check plan"},
	{name: "cluster", prefixes: []string{"gslb/cluster"}, may: []string{"engine", "probes", "checks", "health"},
		holds: "gossip membership, wire messages, votes to health"},
	{name: "agent", prefixes: []string{"probes/agent"}, may: []string{"probes", "checks", "cluster", "health"},
		holds: "the probe agent (meridian probe)"},
	{name: "forwarder", prefixes: []string{"gslb/forward"}, may: []string{"probes", "health", "console"},
		holds: "the bundled L4/L7 forwarder (meridian forward)"},
	{name: "dnsfront", prefixes: []string{"gslb/dnsfront"}, may: []string{"engine", "zones", "dnssec", "geo", "health", "dnsguard", "xfr", "dnstap"},
		holds: "the DNS front end: the query path and the UDP and TCP listeners"},
	{name: "xfr", prefixes: []string{"gslb/dnsfront/xfr"}, may: []string{"zones"},
		holds: "zone transfers out (AXFR, IXFR from a zone's history), TSIG keys, NOTIFY; owns [transfer] and [zone.transfer]"},
	{name: "dnsguard", prefixes: []string{"gslb/dnsfront/rrl", "gslb/dnsfront/cookie"},
		holds: "what keeps the DNS front end from being abused: response rate limiting, DNS cookies (each owns its [server] settings)"},
	{name: "dnstap", prefixes: []string{"gslb/dnsfront/dnstap"},
		holds: "the DNS front end's dnstap output: frames, the writer and its collector, [server.dnstap]"},
	{name: "console", prefixes: []string{"gslb/console"},
		holds: "the operator console in the browser: embedded HTML, CSS and JavaScript that read and call the admin APIs"},
	{name: "admin", prefixes: []string{"gslb/admin"}, may: []string{"engine", "zones", "dnssec", "geo", "probes", "checks", "cluster", "health", "console"},
		holds: "the DNS node's admin HTTP API and metrics"},
	{name: "node", prefixes: []string{"gslb/node"},
		may:   []string{"engine", "config", "dnsfront", "dnsguard", "xfr", "dnstap", "admin", "cluster", "checks", "geo", "zones", "dnssec", "health", "probes"},
		holds: "the DNS node's lifecycle (meridian serve): build, start, reload (build whole, swap, then switch health), stop"},
	{name: "cmd", prefixes: []string{"cmd"}, may: []string{"*"}, holds: "the binary: flags and wiring"},
	{name: "examples", prefixes: []string{"examples"}, holds: "runnable configurations; the embedded quickstart"},
	{name: "internal", prefixes: []string{"internal"}, shared: true, holds: "small kits shared by several rooms"},
	{name: "test", prefixes: []string{"test"}, may: []string{"*"}, holds: "end-to-end tests of the real binary"},
	{name: "docs", prefixes: []string{"docs"}, holds: "these pages and the tests that hold them to the code"},
}

// keepOut lists rooms a room may not reach even indirectly: the forwarder
// is a binary of its own in front of a region's backends and needs nothing
// of the DNS side. Known exceptions are left out of the graph first, so
// they do not trip these as well.
var keepOut = map[string][]string{
	"forwarder": {"engine", "config", "geo", "zones", "dnssec", "dnsfront", "admin", "cluster"},
}

// An exception is an import a rule forbids that exists today, with the work
// that removes it. Delete the line when the work lands: the test fails on an
// exception that no import needs any more.
type exception struct{ from, to, why string }

var exceptions = []exception{}

// underPrefix reports whether pkg is prefix or inside it.
func underPrefix(pkg, prefix string) bool {
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

// roomOf returns the room pkg belongs to, or nil.
func roomOf(pkg string) *room {
	var best *room
	bestLen := -1
	for i := range rooms {
		for _, p := range rooms[i].prefixes {
			if underPrefix(pkg, p) && len(p) > bestLen {
				best, bestLen = &rooms[i], len(p)
			}
		}
	}
	return best
}

// allowed reports whether a package of room from may import one of room to.
func allowed(from, to *room) bool {
	if from == to || to.shared {
		return !from.shared || from == to
	}
	if from.shared {
		return false
	}
	for _, m := range from.may {
		if m == to.name || (m == "*" && to.name != "test" && to.name != "docs") {
			return true
		}
	}
	return false
}

// excepted returns the exception covering the import from → to, if any.
func excepted(from, to string) *exception {
	for i, e := range exceptions {
		if underPrefix(from, e.from) && underPrefix(to, e.to) && roomOf(to) == roomOf(e.to) {
			return &exceptions[i]
		}
	}
	return nil
}

// packageGraph runs `go list -json ./...` at the module's root and returns
// each package's imports of the module's packages (non-test files only:
// tests may import what they check), by module-relative path.
func packageGraph(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -json ./...: %v\n%s", err, stderr.String())
	}
	graph := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("reading go list's output: %v", err)
		}
		rel, ok := relative(p.ImportPath)
		if !ok {
			continue
		}
		graph[rel] = nil
		for _, imp := range p.Imports {
			if r, ok := relative(imp); ok {
				graph[rel] = append(graph[rel], r)
			}
		}
	}
	if len(graph) < 10 {
		t.Fatalf("go list found only %d packages of %s", len(graph), module)
	}
	return graph
}

func relative(importPath string) (string, bool) {
	if importPath == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(importPath, module+"/")
	return rel, ok
}

// TestArchitecture fails on an import that breaks the rules of
// docs/architecture.md, on a package in no room, and on an exception no
// import needs any more.
func TestArchitecture(t *testing.T) {
	graph := packageGraph(t)
	used := map[*exception]bool{}
	pkgs := sortedKeys(graph)
	for _, pkg := range pkgs {
		from := roomOf(pkg)
		if from == nil {
			t.Errorf("%s is in no room: add it to a room in docs/architecture_test.go and docs/architecture.md", pkg)
			continue
		}
		for _, imp := range graph[pkg] {
			to := roomOf(imp)
			if to == nil {
				continue // reported as a package of its own
			}
			if allowed(from, to) {
				continue
			}
			if e := excepted(pkg, imp); e != nil {
				used[e] = true
				continue
			}
			t.Errorf("%s (%s) imports %s (%s): the %s room may import %s (docs/architecture.md)",
				pkg, from.name, imp, to.name, from.name, mayText(from))
		}
	}
	for i := range exceptions {
		if e := &exceptions[i]; !used[e] {
			t.Errorf("exception %s → %s (%s) is no longer needed: delete it from docs/architecture_test.go and docs/architecture.md",
				e.from, e.to, e.why)
		}
	}

	// Rooms kept out of reach, over the graph without the exceptions.
	for _, pkg := range pkgs {
		from := roomOf(pkg)
		if from == nil || keepOut[from.name] == nil {
			continue
		}
		for dep, path := range reach(graph, pkg) {
			if to := roomOf(dep); to != nil && slices.Contains(keepOut[from.name], to.name) {
				t.Errorf("%s (%s) depends on %s (%s) through %s: the %s room keeps out of %s",
					pkg, from.name, dep, to.name, strings.Join(path, " → "), from.name, strings.Join(keepOut[from.name], ", "))
			}
		}
	}
}

// reach returns every package pkg depends on, with one import path to it,
// leaving out the excepted imports.
func reach(graph map[string][]string, pkg string) map[string][]string {
	paths := map[string][]string{pkg: {pkg}}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range graph[p] {
			if _, seen := paths[imp]; seen || excepted(p, imp) != nil {
				continue
			}
			paths[imp] = append(slices.Clone(paths[p]), imp)
			queue = append(queue, imp)
		}
	}
	delete(paths, pkg)
	return paths
}

var update = flag.Bool("update", false, "rewrite the rules block of architecture.md from the rules in the test")

// TestArchitecturePage keeps the rules block of docs/architecture.md equal
// to the rules above; -update writes it.
func TestArchitecturePage(t *testing.T) {
	page, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- rules: generated by TestArchitecturePage from docs/architecture_test.go -->\n", "<!-- end of rules -->\n"
	_, rest, ok := strings.Cut(string(page), begin)
	block, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("architecture.md has no rules block between %q and %q", begin, end)
	}
	want := rulesMarkdown()
	if block == want {
		return
	}
	if *update {
		page := strings.Replace(string(page), begin+block+end, begin+want+end, 1)
		if err := os.WriteFile("architecture.md", []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("architecture.md's rules differ from docs/architecture_test.go; run go test ./docs -run ArchitecturePage -update, or paste:\n\n%s", want)
}

func rulesMarkdown() string {
	var b strings.Builder
	b.WriteString("\n| Room | Packages | Holds | May import |\n|---|---|---|---|\n")
	for _, r := range rooms {
		var pk []string
		for _, p := range r.prefixes {
			pk = append(pk, "`"+p+"/…`")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.name, strings.Join(pk, ", "), r.holds, mayText(&r))
	}
	b.WriteString("\nRooms kept out of reach even through other packages:\n\n")
	for _, name := range sortedKeys(keepOut) {
		fmt.Fprintf(&b, "- %s: %s\n", name, strings.Join(keepOut[name], ", "))
	}
	if len(exceptions) == 0 {
		b.WriteString("\nKnown exceptions: none; every import follows the rules.\n\n")
		return b.String()
	}
	b.WriteString("\nKnown exceptions, each deleted when its work lands:\n\n| Package | Imports | Until |\n|---|---|---|\n")
	for _, e := range exceptions {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", e.from, e.to, e.why)
	}
	b.WriteString("\n")
	return b.String()
}

func mayText(r *room) string {
	switch {
	case r.shared:
		return "only itself; every room may import it"
	case slices.Contains(r.may, "*"):
		return "any room but test and docs"
	case len(r.may) == 0:
		return "nothing of Meridian"
	}
	return strings.Join(r.may, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
