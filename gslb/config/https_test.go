package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/gslb"
)

// httpsRecords is a configuration with one dynamic record whose https
// table (and pools' tables) are filled in by each test.
func httpsRecords(record, poolA, poolB string) string {
	return zoneTable + `
[[region]]
name = "a"
lat = 1
lon = 1
[[region]]
name = "b"
lat = 2
lon = 2
[[record]]
name = "app.example.test"
policy = "failover"
` + record + `
[[record.pool]]
region = "a"
check = { type = "none" }
` + poolA + `
[[record.pool.target]]
address = "192.0.2.1"
[[record.pool]]
region = "b"
check = { type = "none" }
` + poolB + `
[[record.pool.target]]
address = "192.0.2.2"
`
}

func TestHTTPSParams(t *testing.T) {
	src := httpsRecords(`https = { alpn = ["h2", "h3"], port = 8443 }`, `https = { alpn = ["h2"] }`, "")
	cfg, err := Parse("file.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	g, err := cfg.BuildGSLB()
	if err != nil {
		t.Fatal(err)
	}
	r := g.Records[0]
	want := []*gslb.ServiceParams{{ALPN: []string{"h2"}, Port: 8443}, {ALPN: []string{"h2", "h3"}, Port: 8443}}
	for i, p := range r.Pools {
		if got := r.HTTPSParams(p); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("pool %s: %+v, want %+v", p.Name, got, want[i])
		}
	}
	cfg, err = Parse("file.toml", []byte(httpsRecords("", "", "")))
	if err != nil {
		t.Fatal(err)
	}
	if g, _ = cfg.BuildGSLB(); g.Records[0].HTTPS != nil {
		t.Errorf("no https table, and the record answers HTTPS: %+v", g.Records[0].HTTPS)
	}
}

func TestHTTPSErrors(t *testing.T) {
	dual := `
[[record]]
name = "App.example.test."
type = "AAAA"
policy = "failover"
https = {}
[[record.pool]]
region = "a"
check = { type = "none" }
[[record.pool.target]]
address = "2001:db8::1"
`
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"port out of range", httpsRecords(`https = { port = 70000 }`, "", ""), "file.toml:17: record[0].https.port: must be 1 to 65535"},
		{"empty alpn-id", httpsRecords(`https = { alpn = [""] }`, "", ""), `record[0].https.alpn: "" is not an alpn-id`},
		{"comma in alpn-id", httpsRecords(`https = { alpn = ["h2,h3"] }`, "", ""), `record[0].https.alpn: "h2,h3" is not an alpn-id`},
		{"alpn-id twice", httpsRecords(`https = { alpn = ["h2", "h2"] }`, "", ""), `record[0].https.alpn: lists "h2" twice`},
		{"pool override without the record's", httpsRecords("", `https = { alpn = ["h2"] }`, ""), "record[0].pool[0].https: overrides the record's https, and record app.example.test has none"},
		{"bad pool port", httpsRecords("https = {}", "", `https = { port = -1 }`), "record[0].pool[1].https.port: must be 1 to 65535"},
		{"both families carry https", httpsRecords("https = {}", "", "") + dual, "record[1].https: record[0] of App.example.test. has https already"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("file.toml", []byte(tc.src))
			if err == nil || len(errorsOf(err)) != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestDnstapErrors: [server.dnstap]'s problems name their key and line.
func TestDnstapErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"[server.dnstap]\nfile = \"tap.dnstap\"\nsample = 2\n", "file.toml:3: server.dnstap.sample: must be more than 0"},
		{"[server.dnstap]\nfile = \"a\"\nsocket = \"b\"\n", "server.dnstap.socket: give one of socket, address and file"},
		{"[server.dnstap]\naddress = \"collector\"\n", `file.toml:2: server.dnstap.address: "collector" is not host:port`},
		{"[server.dnstap]\nfile = \"a\"\nreconnect_interval = \"1ms\"\n", "server.dnstap.reconnect_interval: must be at least 10ms"},
	} {
		_, err := Parse("file.toml", []byte(tc.src+zoneTable))
		if err == nil || len(errorsOf(err)) != 1 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.src, err, tc.want)
		}
	}
}
