package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const loadBase = `
[[pool]]
name = "app"
[[pool.backend]]
address = "127.0.0.1:9000"

[[listener]]
name = "web"
protocol = "http"
listen = "127.0.0.2:8080"
pool = "app"
`

// TestListenerLoad: the load keys and [cluster], and each absurd value
// refused at its file, line and key.
func TestListenerLoad(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(key, []byte("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cluster := "\n[cluster]\nbind = \"127.0.0.1:7950\"\nregion = \"eu-west\"\nseeds = [\"127.0.0.1:7946\"]\nkey_file = \"gossip.key\"\n"
	tests := []struct {
		name, extra string
		errs        []string
	}{
		{"reported", "target_load = 100.0\nmax_load = 130.0\n" + cluster, nil},
		{"connections with vips", "target_load = 100.0\nmax_load = 130.0\nload_unit = \"connections\"\nvips = [\"192.0.2.10\"]\n", nil},
		{"max below target", "target_load = 100.0\nmax_load = 50.0\n", []string{"file.toml:13: listener[0].max_load: must be above target_load"}},
		{"negative", "target_load = -1.0\nmax_load = 50.0\n", []string{"file.toml:12: listener[0].target_load: must be a positive number"}},
		{"nan", "target_load = nan\nmax_load = 50.0\n", []string{"listener[0].target_load: must be a positive number, got NaN"}},
		{"inf", "target_load = 1.0\nmax_load = inf\n", []string{"listener[0].max_load: must be a positive number, got +Inf"}},
		{"one without the other", "target_load = 1.0\n", []string{"listener[0].max_load: target_load and max_load go together"}},
		{"unit unknown", "target_load = 1.0\nmax_load = 2.0\nload_unit = \"bps\"\n", []string{"file.toml:14: listener[0].load_unit: must be rps or connections"}},
		{"vip not an address", "target_load = 1.0\nmax_load = 2.0\nvips = [\"www\"]\n", []string{"listener[0].vips: \"www\" is not an IP address"}},
		{"vips alone", "vips = [\"192.0.2.1\"]\n", []string{"listener[0].vips: is for load reports"}},
		{"cluster without region", "\n[cluster]\nbind = \"127.0.0.1:7950\"\nseeds = [\"127.0.0.1:7946\"]\n", []string{"cluster.region: missing"}},
		{"cluster in clear beyond loopback", "\n[cluster]\nbind = \"192.0.2.1:7950\"\nregion = \"r\"\nseeds = [\"192.0.2.2:7946\"]\n", []string{"cluster.key_file: gossip on 192.0.2.1:7950 would be in clear"}},
		{"seeds without bind", "\n[cluster]\nseeds = [\"127.0.0.1:7946\"]\n", []string{"cluster.bind: is needed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseForward(filepath.Join(dir, "file.toml"), []byte(loadBase+tt.extra))
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				l := f.Listeners[0]
				if !l.Reports() || len(l.VIPAddrs) != 1 {
					t.Fatalf("listener %+v: want reported, one VIP", l.ListenerLoad)
				}
				if tt.name == "reported" && (l.VIPAddrs[0] != netip.MustParseAddr("127.0.0.2") || l.LoadUnit != "rps" || !f.Cluster.Enabled() || len(f.Cluster.Keys) != 1) {
					t.Errorf("listener %+v, cluster %+v", l.ListenerLoad, f.Cluster)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
