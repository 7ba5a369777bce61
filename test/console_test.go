package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The console's tests drive a real headless Chromium (Debian's chromium,
// which .ci/run installs) through the DevTools protocol with chromedp,
// against the real binary serving the quickstart.

var (
	updateScreenshots = flag.Bool("update", false, "TestConsoleScreenshots: rewrite docs/console/*.png")
	measureCPU        = flag.Duration("console-cpu", 0, "TestConsoleCPU: measure the DNS node's CPU for this long with 5 consoles open")
)

const (
	browserTimeout = 90 * time.Second // a whole console test, browser start included
	pollTimeout    = 15 * time.Second // for the page to show what the test waits for
	consoleToken   = "console-e2e-token-0123456789"
)

// newBrowser starts headless Chromium with a window of w×h pixels and
// returns a context for chromedp; the browser ends with the test.
func newBrowser(t *testing.T, w, h int) context.Context {
	t.Helper()
	return newBrowserFor(t, w, h, browserTimeout)
}

// newBrowserFor is newBrowser whose browser lives at most d.
func newBrowserFor(t *testing.T, w, h int, d time.Duration) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found on PATH (apt-get install chromium; .ci/run installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(w, h),
		chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// run runs chromedp steps in order, failing the test with what was
// being done.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// result runs one chromedp action and returns its value.
func result[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitFor polls a JavaScript expression in the page until it is truthy.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	waitWithin(t, ctx, pollTimeout, what, expr)
}

func waitWithin(t *testing.T, ctx context.Context, d time.Duration, what, expr string) {
	t.Helper()
	result(t, ctx, "waiting for "+what, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(d)))
}

// eval evaluates a JavaScript expression.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return result(t, ctx, "evaluating "+expr, chromedp.Evaluate[T](expr))
}

// text is the text of the first element the CSS selector matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return result(t, ctx, "reading "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// startConsoleQuickstart serves the quickstart as make run does: with a
// token passed by -admin-token-file, the configuration through edit.
func startConsoleQuickstart(t *testing.T, edit func(string) string) (*instance, string) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte(consoleToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startQuickstartFlags(t, []string{"-admin-token-file", tokenFile}, edit)
	return s, "http://" + s.waitLog(t, "admin API", 0).str("addr")
}

// mapMark is a region as the overview's map shows it.
type mapMark struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Label string `json:"label"`
}

const mapMarksJS = `[...document.querySelectorAll("#map-marks g.region")].map(g => ({name: g.dataset.name, state: g.dataset.state, label: g.querySelector("text").textContent}))`

// TestConsoleOverview: the overview's map shows the quickstart's three
// regions, each with its state, as the API reports it; the records view
// shows what each region's clients get.
func TestConsoleOverview(t *testing.T) {
	_, base := startConsoleQuickstart(t, nil)
	ctx := newBrowser(t, 1000, 900)
	run(t, ctx, "open the console", chromedp.Navigate(base+"/"))
	waitFor(t, ctx, "three regions on the map", `document.querySelectorAll("#map-marks g.region").length === 3`)
	// With nothing listening on the check ports, every target goes down.
	waitFor(t, ctx, "the regions down", `[...document.querySelectorAll("#map-marks g.region")].every(g => g.dataset.state === "down")`)
	marks := eval[[]mapMark](t, ctx, mapMarksJS)
	var names []string
	for _, m := range marks {
		names = append(names, m.Name)
		if m.Label != m.Name+" · down" {
			t.Errorf("region %s labelled %q, want its name and state", m.Name, m.Label)
		}
	}
	slices.Sort(names)
	if want := []string{"ap-northeast", "eu-west", "us-east"}; !slices.Equal(names, want) {
		t.Errorf("map shows %v, want %v", names, want)
	}
	if rows := eval[int](t, ctx, `document.querySelectorAll("#regions tbody tr").length`); rows != 3 {
		t.Errorf("the regions table has %d rows, want 3", rows)
	}

	// The records view: each region's clients (its first geo.network
	// row) and the answer they get now.
	run(t, ctx, "open the records", chromedp.Navigate(base+"/#records"))
	waitFor(t, ctx, "eu-west's answer", `[...document.querySelectorAll("#records tr")].some(tr => tr.textContent === "eu-west198.51.100.0/24198.51.100.100eu-westfail-open")`)
}

// digEU asks what eu-west's clients (198.51.100.0/24, a geo.network row
// of the quickstart) get for app.example.test.
func digEU(t *testing.T, s *instance) []string {
	t.Helper()
	return s.dig(t, "app.example.test", "A", "+norec", "+subnet=198.51.100.7/24").sections["ANSWER"]
}

// onlyEUVIP reports whether the answer is eu-west's VIP alone.
func onlyEUVIP(rrs []string) bool {
	return len(rrs) == 1 && strings.HasSuffix(rrs[0], " 198.51.100.100")
}

// consoleChange clicks through an action: chooses the region, presses
// the operation's button, waits for the dry run's difference, confirms,
// and returns what the console then says.
func consoleChange(t *testing.T, ctx context.Context, region, op string) (diff, said string) {
	t.Helper()
	run(t, ctx, "choose "+region, chromedp.SetValue(chromedp.CSS("#act-region-name"), region))
	run(t, ctx, "press "+op, chromedp.Click(chromedp.CSS(`#act-region button[data-op="`+op+`"]`)))
	waitFor(t, ctx, "the dry run", `!document.getElementById("confirm").hidden`)
	diff = text(t, ctx, "#confirm-diff")
	run(t, ctx, "confirm", chromedp.Click(chromedp.CSS("#confirm-yes")))
	waitFor(t, ctx, "the result", `document.getElementById("act-result").textContent !== ""`)
	return diff, text(t, ctx, "#act-result")
}

// openActions opens the actions view once its region list is filled.
func openActions(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	run(t, ctx, "open the actions", chromedp.Navigate(base+"/#actions"))
	waitFor(t, ctx, "the regions to choose from", `document.querySelectorAll("#act-region-name option").length === 3`)
}

// TestConsoleDrain drains eu-west by clicking through the console (token
// typed, dry run shown, confirmed): dig then gets us-east's VIPs for
// eu-west's subnet; undraining the same way brings its own VIP back.
func TestConsoleDrain(t *testing.T) {
	s, base := startConsoleQuickstart(t, nil)
	if got := digEU(t, s); !onlyEUVIP(got) {
		t.Fatalf("before the drain eu-west's clients get %v", got)
	}
	ctx := newBrowser(t, 1000, 900)
	openActions(t, ctx, base)
	run(t, ctx, "type the token", chromedp.SendKeys(chromedp.CSS("#token"), consoleToken))

	diff, result := consoleChange(t, ctx, "eu-west", "drain")
	if !strings.Contains(diff, "from eu-west to us-east") || !strings.Contains(diff, "198.51.100.0/24") {
		t.Errorf("the dry run says %q, want eu-west's network moving to us-east", diff)
	}
	if !strings.HasPrefix(result, "Done: Drain region eu-west") {
		t.Fatalf("the console says %q after the drain", result)
	}
	if got := digEU(t, s); onlyEUVIP(got) || len(got) != 2 {
		t.Fatalf("eu-west drained from the console, its clients get %v, want us-east's two VIPs", got)
	}

	_, result = consoleChange(t, ctx, "eu-west", "undrain")
	if !strings.HasPrefix(result, "Done: Undrain region eu-west") {
		t.Fatalf("the console says %q after the undrain", result)
	}
	if got := digEU(t, s); !onlyEUVIP(got) {
		t.Fatalf("undrained, eu-west's clients get %v", got)
	}
}

// TestConsoleRefusedWithoutToken: a drain confirmed with no token typed is
// refused by the API; the console shows the API's error and the answers
// stay.
func TestConsoleRefusedWithoutToken(t *testing.T) {
	s, base := startConsoleQuickstart(t, nil)
	ctx := newBrowser(t, 1000, 900)
	openActions(t, ctx, base)
	_, result := consoleChange(t, ctx, "eu-west", "drain")
	if !strings.Contains(result, "401") || !strings.Contains(result, "missing or wrong bearer token") {
		t.Errorf("the console says %q, want the API's 401", result)
	}
	if got := digEU(t, s); !onlyEUVIP(got) {
		t.Errorf("a refused drain changed eu-west's answer: %v", got)
	}
}

// TestConsoleExplain: the explain form shows the decision the API (and
// meridian explain) makes for a client.
func TestConsoleExplain(t *testing.T) {
	_, base := startConsoleQuickstart(t, nil)
	ctx := newBrowser(t, 1000, 900)
	run(t, ctx, "explain ap-northeast's client",
		chromedp.Navigate(base+"/#explain"),
		chromedp.WaitVisible(chromedp.CSS("#explain-form")),
		chromedp.SendKeys(chromedp.CSS("#explain-client"), "203.0.113.9/24"),
		chromedp.SendKeys(chromedp.CSS("#explain-name"), "app.example.test"),
		chromedp.Click(chromedp.CSS(`#explain-form button[type="submit"]`)))
	waitFor(t, ctx, "the decision", `document.getElementById("explain-answer") !== null`)
	answer, outcome, all := text(t, ctx, "#explain-answer"), text(t, ctx, "#explain-outcome"), text(t, ctx, "#explain-out")
	if answer != "203.0.113.100" || outcome != "fail-open" {
		t.Errorf("explain shows answer %q, outcome %q; want 203.0.113.100 and fail-open (no target is up)", answer, outcome)
	}
	if !strings.Contains(all, "ap-northeast") || !strings.Contains(all, "203.0.113.0/24") {
		t.Errorf("explain does not show the pool and the network that located the client:\n%s", all)
	}
	_, out := adminCall(t, "GET", base+"/api/v1/explain?name=app.example.test&client=203.0.113.9/24", "")
	if !strings.Contains(out, `"outcome": "`+outcome+`"`) {
		t.Errorf("the API decides otherwise: %s", out)
	}
}

// hostile is a region name and a pool name the configuration accepts and
// a browser would run as markup.
const (
	hostileRegion = `<img src=x onerror=window.__pwned=1>`
	hostilePool   = `<svg onload=window.__pwned=2>`
)

// TestConsoleEscapes: a region and a pool whose names are HTML show as
// their characters on the map, in the tables and in the records; no
// element is made from them and nothing runs.
func TestConsoleEscapes(t *testing.T) {
	_, base := startConsoleQuickstart(t, func(c string) string {
		first := "[[geo.network]]\nprefix = \"192.0.2.0/24\""
		c = replaceOnce(t, c, first, fmt.Sprintf("[[region]]\nname = %q\nlat = -33.87\nlon = 151.21\n\n[[geo.network]]\nprefix = \"100.64.0.0/24\"\nregion = %q\n\n",
			hostileRegion, hostileRegion)+first)
		return c + fmt.Sprintf("\n[[record.pool]]\nname = %q\nregion = %q\nweight = 1\ncheck = { type = \"none\" }\n[[record.pool.target]]\naddress = \"192.0.2.112\"\n",
			hostilePool, hostileRegion)
	})
	ctx := newBrowser(t, 1000, 900)
	run(t, ctx, "open the console", chromedp.Navigate(base+"/"))
	waitFor(t, ctx, "four regions on the map", `document.querySelectorAll("#map-marks g.region").length === 4`)
	marks := eval[[]mapMark](t, ctx, mapMarksJS)
	found := false
	for _, m := range marks {
		found = found || (m.Name == hostileRegion && strings.HasPrefix(m.Label, hostileRegion+" · "))
	}
	if !found {
		t.Errorf("the map does not show the region %q as text: %+v", hostileRegion, marks)
	}
	for _, view := range []string{"overview", "health", "records"} {
		run(t, ctx, "open "+view, chromedp.Navigate(base+"/#"+view))
		holds := hostileRegion
		if view == "records" {
			holds = hostilePool
		}
		waitFor(t, ctx, view+" showing the name as text", fmt.Sprintf(`document.getElementById("view-%s").textContent.includes(%q)`, view, holds))
		injected := eval[struct {
			Imgs, Handlers, NestedSVG int
			Pwned                     bool
		}](t, ctx, `({Imgs: document.querySelectorAll("img").length,
			Handlers: document.querySelectorAll("[onerror],[onload]").length,
			NestedSVG: document.querySelectorAll("svg svg, main svg:not(#map):not(#live-chart)").length,
			Pwned: window.__pwned !== undefined})`)
		if injected.Imgs+injected.Handlers+injected.NestedSVG > 0 || injected.Pwned {
			t.Errorf("%s: markup from the API became elements: %+v", view, injected)
		}
	}
}

// TestConsolePhoneWidth: at a phone's width (390 pixels) the overview
// fits: nothing scrolls sideways.
func TestConsolePhoneWidth(t *testing.T) {
	_, base := startConsoleQuickstart(t, nil)
	ctx := newBrowser(t, 390, 844)
	run(t, ctx, "open the console on a phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/"))
	waitFor(t, ctx, "three regions on the map", `document.querySelectorAll("#map-marks g.region").length === 3`)
	width := eval[struct{ Scroll, Inner int }](t, ctx, `({Scroll: document.documentElement.scrollWidth, Inner: window.innerWidth})`)
	if width.Inner != 390 || width.Scroll > width.Inner {
		t.Errorf("at 390 pixels the page is %d wide in a %d window: it scrolls sideways", width.Scroll, width.Inner)
	}
}

// consoleForwardConfig is forwardConfig's pool of backends (a live HTTP
// one and a dead one) and TCP listener, with an http listener beside it
// whose route has a canary pool.
func consoleForwardConfig(live, dead, canary string) string {
	return forwardConfig(live, dead) + fmt.Sprintf(`
[[pool]]
name = "next"
[pool.check]
type = "none"
[[pool.backend]]
address = %q

[[listener]]
name = "http"
protocol = "http"
listen = "127.0.0.1:0"
pool = "web"
[[listener.route]]
name = "app"
path_prefix = "/"
pool = "web"
canary = { pool = "next", percent = 10 }
`, canary)
}

// deadAddress is a loopback address nothing listens on any more.
func deadAddress(t *testing.T) string {
	t.Helper()
	b := startEchoBackend(t, "gone")
	b.stop()
	return b.addr
}

// TestConsoleForwarder: the forwarder's console lists its pools with
// their backends and states, and the listener's route with its canary.
func TestConsoleForwarder(t *testing.T) {
	live, dead, next := webBackend(t, "web1"), deadAddress(t), webBackend(t, "next")
	s := startForward(t, consoleForwardConfig(live, dead, next))
	base := "http://" + s.waitLog(t, "http endpoints", 0).str("addr")
	ctx := newBrowser(t, 1000, 900)
	run(t, ctx, "open the forwarder's console", chromedp.Navigate(base+"/"))
	waitFor(t, ctx, "both pools", `document.querySelectorAll("#pools [data-pool]").length === 2`)
	waitFor(t, ctx, "the dead backend down", fmt.Sprintf(`[...document.querySelectorAll('[data-pool="web"] tbody tr')].some(tr => tr.cells[0].textContent === %q && tr.cells[1].textContent.startsWith("down"))`, dead))
	web := text(t, ctx, `[data-pool="web"]`)
	if !strings.Contains(web, live) || !strings.Contains(web, "up") || !strings.Contains(web, "1 of 2 healthy") {
		t.Errorf("pool web shows:\n%s\nwant %s up and 1 of 2 healthy", web, live)
	}
	run(t, ctx, "open the listeners", chromedp.Navigate(base+"/#listeners"))
	waitFor(t, ctx, "the canary", `document.getElementById("listeners").textContent.includes("next takes 10%")`)
}

// TestConsoleScreenshots writes docs/console/*.png, the main views on the
// quickstart with one region degraded and answers flowing; only with
// -update, as the pictures are for people.
func TestConsoleScreenshots(t *testing.T) {
	if !*updateScreenshots {
		t.Skip("writes docs/console/*.png with -update")
	}
	up := newHealthPorts(t, 2)
	s, base := startConsoleQuickstart(t, func(c string) string {
		c = replaceOnce(t, c, "127.0.0.1:18081", up[0].addr)
		return replaceOnce(t, c, "127.0.0.1:18083", up[1].addr)
	})
	stop := make(chan struct{})
	defer close(stop)
	go func() { // answers for the live view, eu-west busier than the rest
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			subnet := []string{"198.51.100.7/24", "198.51.100.7/24", "192.0.2.7/24", "203.0.113.9/24"}[i%4]
			_, _, _ = s.runDig(t, "+tries=1", "+time=1", "app.example.test", "+subnet="+subnet)
		}
	}()
	dir := filepath.Join("..", "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := newBrowser(t, 800, 800)
	shots := []struct{ name, url, ready string }{
		{"overview", "/", `[...document.querySelectorAll("#map-marks g.region")].some(g => g.dataset.state === "degraded")`},
		{"health", "/#health", `document.querySelectorAll("#matrix tbody tr").length > 3`},
		{"explain", "/#explain", `document.getElementById("explain-answer") !== null`},
		{"live", "/#live", `document.querySelectorAll("#live-chart polyline").length === 3 && document.querySelector("#live-chart polyline").getAttribute("points").split(" ").length > 6`},
	}
	time.Sleep(3 * time.Second) // targets up (rise 2)
	for _, sh := range shots {
		run(t, ctx, "open "+sh.name, chromedp.Navigate(base+sh.url))
		if sh.name == "explain" {
			run(t, ctx, "fill explain", chromedp.SendKeys(chromedp.CSS("#explain-client"), "198.51.100.7/24"),
				chromedp.SendKeys(chromedp.CSS("#explain-name"), "app.example.test"), chromedp.Click(chromedp.CSS(`#explain-form button[type="submit"]`)))
		}
		waitWithin(t, ctx, 90*time.Second, sh.name, sh.ready)
		screenshot(t, ctx, filepath.Join(dir, sh.name+".png"))
	}
	live, dead, next := webBackend(t, "web1"), deadAddress(t), webBackend(t, "next")
	f := startForward(t, consoleForwardConfig(live, dead, next))
	run(t, ctx, "open the forwarder", chromedp.Navigate("http://"+f.waitLog(t, "http endpoints", 0).str("addr")+"/"))
	waitFor(t, ctx, "its pools", `document.querySelectorAll("#pools [data-pool]").length === 2 && document.getElementById("pools").textContent.includes("down")`)
	screenshot(t, ctx, filepath.Join(dir, "forwarder.png"))
}

func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png := result(t, ctx, "screenshot "+path, chromedp.CaptureScreenshot())
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", path, len(png))
}

// TestConsoleCPU measures what 5 open consoles cost the DNS node: its CPU
// time (utime+stime in /proc/PID/stat) over -console-cpu with no browser,
// then with 5 headless browsers polling (3 on the overview, 2 on the live
// view). It logs the numbers for docs/console.md and asserts nothing of
// them: a timed assertion would fail on a loaded machine.
func TestConsoleCPU(t *testing.T) {
	d := *measureCPU
	if d == 0 {
		t.Skip("measures with -console-cpu 60s")
	}
	s, base := startConsoleQuickstart(t, nil)
	pid := s.cmd.Process.Pid
	time.Sleep(3 * time.Second) // past the start's own work
	idle := cpuOver(t, pid, d)
	var pages []context.Context
	for i, view := range []string{"/", "/", "/", "/#live", "/#live"} {
		ctx := newBrowserFor(t, 1000, 900, 2*d+time.Minute)
		run(t, ctx, fmt.Sprintf("open console %d", i), chromedp.Navigate(base+view))
		pages = append(pages, ctx)
	}
	time.Sleep(5 * time.Second)
	const requestsJS = `performance.getEntriesByType("resource").filter(e => e.name.includes("/api/") || e.name.includes("/metrics")).length`
	before := 0
	for _, ctx := range pages {
		before += eval[int](t, ctx, requestsJS)
	}
	busy := cpuOver(t, pid, d)
	after := 0
	for _, ctx := range pages {
		after += eval[int](t, ctx, requestsJS)
	}
	t.Logf("DNS node CPU over %v: %.3f%% of a core alone, %.3f%% with 5 consoles open (%d API requests, %.1f/s): the consoles cost %.3f%%",
		d, idle, busy, after-before, float64(after-before)/d.Seconds(), busy-idle)
}

// cpuOver returns the CPU the process used over d, in percent of one core.
func cpuOver(t *testing.T, pid int, d time.Duration) float64 {
	t.Helper()
	start, t0 := cpuTicks(t, pid), time.Now()
	time.Sleep(d)
	used, took := cpuTicks(t, pid)-start, time.Since(t0)
	return 100 * float64(used) / clockTicks / took.Seconds()
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuTicks reads utime+stime of a process.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces: fields count from its end.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	var utime, stime int64
	if _, err := fmt.Sscan(fields[11]+" "+fields[12], &utime, &stime); err != nil {
		t.Fatalf("/proc/%d/stat: %v", pid, err)
	}
	return utime + stime
}
