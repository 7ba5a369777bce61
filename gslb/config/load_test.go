package config

import (
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/gslb"
)

// TestRecordLoad: load = "headroom" reaches the engine's record; anything
// else but "off" is an error at its line.
func TestRecordLoad(t *testing.T) {
	src := func(load string) string {
		return strings.Replace(poolCheck(`{ type = "tcp", port = 80 }`), `policy = "failover"`, `policy = "failover"`+"\n"+load, 1)
	}
	tests := []struct {
		load, err string
		want      gslb.LoadMode
	}{
		{"", "", gslb.LoadOff},
		{`load = "off"`, "", gslb.LoadOff},
		{`load = "Headroom"`, "", gslb.LoadHeadroom},
		{`load = "least-loaded"`, `file.toml:13: record[0].load: must be one of off, headroom, got "least-loaded"`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.load, func(t *testing.T) {
			c, err := Parse("file.toml", []byte(src(tt.load)))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g, err := c.BuildGSLB()
			if err != nil {
				t.Fatal(err)
			}
			if g.Records[0].Load != tt.want {
				t.Errorf("load mode %v, want %v", g.Records[0].Load, tt.want)
			}
		})
	}
}
