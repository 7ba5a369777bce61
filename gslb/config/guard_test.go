package config

import (
	"strings"
	"testing"
)

// guardBase is a record over two regions for the guards to name.
const guardBase = zoneTable + `
[[region]]
name = "us-east"
lat = 38.9
lon = -77.4

[[region]]
name = "eu-west"
lat = 53.3
lon = -6.3

[[record]]
name = "app.example.test"
type = "A"
policy = "failover"
[[record.pool]]
region = "us-east"
check = { type = "none" }
[[record.pool.target]]
address = "192.0.2.1"
[[record.pool]]
region = "eu-west"
check = { type = "none" }
[[record.pool.target]]
address = "198.51.100.1"
`

func TestGuards(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // one entry per error; "" for none
	}{
		{"valid", `
[[guard]]
name = "two"
record = "app.example.test"
min_regions = 2
[[guard]]
name = "half"
record = "app.example.test"
type = "A"
pool = "eu-west"
max_drained_percent = 50
[[guard]]
name = "stay"
never_drain = "us-east"
`, nil},
		{"no kind", "[[guard]]\nname = \"x\"\n", []string{"guard[0]: give exactly one of min_regions"}},
		{"two kinds", "[[guard]]\nname = \"x\"\nnever_drain = \"us-east\"\nrecord = \"app.example.test\"\nmin_regions = 2\n", []string{"guard[0]: give exactly one"}},
		{"no name", "[[guard]]\nnever_drain = \"us-east\"\n", []string{"guard[0].name: missing"}},
		{"twice", "[[guard]]\nname = \"x\"\nnever_drain = \"us-east\"\n[[guard]]\nname = \"x\"\nnever_drain = \"eu-west\"\n", []string{`guard[1].name: guard "x" is defined twice`}},
		{"unknown region", "[[guard]]\nname = \"x\"\nnever_drain = \"mars\"\n", []string{`guard[0].never_drain: no [[region]] is named "mars"`}},
		{"unknown record", "[[guard]]\nname = \"x\"\nrecord = \"nope.example.test\"\nmin_regions = 1\n", []string{`guard[0].record: no [[record]] is named "nope.example.test"`}},
		{"unknown pool", "[[guard]]\nname = \"x\"\nrecord = \"app.example.test\"\npool = \"ap\"\nmax_drained_percent = 10\n", []string{`guard[0].pool: record app.example.test has no pool "ap"; its pools: eu-west, us-east`}},
		{"percent out of range", "[[guard]]\nname = \"x\"\nrecord = \"app.example.test\"\npool = \"eu-west\"\nmax_drained_percent = 100\n", []string{"guard[0].max_drained_percent: must be 0 to less than 100"}},
		{"min_regions without record", "[[guard]]\nname = \"x\"\nmin_regions = 2\n", []string{"guard[0].record: missing"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("file.toml", []byte(guardBase+tc.src))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(cfg.Guards) != 3 || *cfg.Guards[1].MaxDrainedPercent != 50 {
					t.Errorf("guards = %+v", cfg.Guards)
				}
				return
			}
			errs := errorsOf(err)
			if len(errs) != len(tc.want) {
				t.Fatalf("%d errors, want %d: %v", len(errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) || !strings.Contains(errs[i].Error(), "file.toml:") {
					t.Errorf("error %q does not name the file and say %q", errs[i], w)
				}
			}
		})
	}
}
