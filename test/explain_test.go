package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestExplain runs `meridian explain` on a copy of the quickstart whose
// eu-west target is checked on a port the test listens on and whose other
// targets are checked on a port nothing listens on.
func TestExplain(t *testing.T) {
	ports := newHealthPorts(t, 2)
	up := ports[0]
	ports[1].down(t)
	down := ports[1].addr

	dir, configFor := copyQuickstart(t)
	config := configFor(freePort(t))
	for _, port := range []string{"18081", "18082", "18084"} {
		config = replaceOnce(t, config, `"127.0.0.1:`+port+`"`, fmt.Sprintf("%q", down))
	}
	config = replaceOnce(t, config, `"127.0.0.1:18083"`, fmt.Sprintf("%q", up.addr))
	path := filepath.Join(dir, "meridian.toml")
	writeFile(t, path, config)

	t.Run("eu-west client, eu-west up", func(t *testing.T) {
		out, errOut, code := runMeridian(t, "explain", "-config", path, "-client", "198.51.100.7/24", "app.example.test", "A")
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
		for _, want := range []string{
			"client    198.51.100.0/24 (an EDNS Client Subnet",
			"geo       region eu-west\n          decided  geo.network 198.51.100.0/24\n",
			"policy geo",
			"198.51.100.100 up",
			"192.0.2.100 down (connect: connection refused)",
			"answer    198.51.100.100",
			"answered from eu-west, ttl 30, ECS scope /24",
			"every client in 198.51.100.0/24 gets this order of pools",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("us-east client: its region down, eu-west answers as fallback", func(t *testing.T) {
		out, _, code := runMeridian(t, "explain", "-config", path, "-client", "192.0.2.53", "-json", "app.example.test")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		var got struct {
			Client   string
			Decision struct {
				Outcome, Region string
				Answer          []string
				TTL             int
				Candidates      []struct {
					Region   string
					Eligible bool
				}
				ScopeNetwork string `json:"scope_network"`
				Geo          []struct{ Source, Network, Region string }
			}
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		d := got.Decision
		if got.Client != "192.0.2.53/32" || d.Outcome != "fallback" || d.Region != "eu-west" || d.TTL != 10 ||
			len(d.Answer) != 1 || d.Answer[0] != "198.51.100.100" || len(d.Candidates) != 3 ||
			d.Candidates[0].Region != "us-east" || d.Candidates[0].Eligible {
			t.Fatalf("decision %+v", got)
		}
		// The row that decided, and the clients the order holds for:
		// us-east first is also every unlocated client's order, as far as
		// 192.0.0.0/6, which holds no other row.
		if len(d.Geo) != 1 || d.Geo[0].Source != "geo.network" || d.Geo[0].Network != "192.0.2.0/24" ||
			d.Geo[0].Region != "us-east" || d.ScopeNetwork != "192.0.0.0/6" {
			t.Errorf("geo %+v, scope network %q", d.Geo, d.ScopeNetwork)
		}
	})
	t.Run("not a dynamic record", func(t *testing.T) {
		_, errOut, code := runMeridian(t, "explain", "-config", path, "-client", "192.0.2.53", "www.example.test")
		if code != 1 || !strings.Contains(errOut, "is not a dynamic record") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("usage", func(t *testing.T) {
		if _, _, code := runMeridian(t, "explain", "app.example.test"); code != 2 {
			t.Fatalf("without -client: exit %d, want 2", code)
		}
	})
}
