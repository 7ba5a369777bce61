package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMetricsInAPIPage scrapes a running quickstart and checks that every
// meridian_ metric it exports is named in docs/api.md. docs'
// TestMetricsDocumented reads the names from the sources, which sees every
// metric, including those that show only once something happened and those
// of the forwarder and the agent; this holds the page to what a scrape
// really gives, whatever way a name was built.
func TestMetricsInAPIPage(t *testing.T) {
	s := startQuickstart(t)
	base := "http://" + s.waitLog(t, "admin API", 0).str("addr")
	s.dig(t, "www.example.test", "A") // counts a response, so the DNS families show
	code, page := adminCall(t, "GET", base+"/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	raw, err := os.ReadFile(filepath.Join("..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, n := range regexp.MustCompile(`meridian_[a-z0-9_]*[a-z0-9]`).FindAllString(string(raw), -1) {
		documented[n] = true
	}
	seen := 0
	for _, line := range strings.Split(page, "\n") {
		rest, ok := strings.CutPrefix(line, "# TYPE meridian_")
		if !ok {
			continue
		}
		seen++
		if name := "meridian_" + strings.Fields(rest)[0]; !documented[name] {
			t.Errorf("/metrics exports %s, which docs/api.md does not name", name)
		}
	}
	if seen < 5 {
		t.Fatalf("only %d meridian_ metrics on /metrics:\n%s", seen, page)
	}
}
