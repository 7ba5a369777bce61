package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// written is one way of writing a configuration: src, and the line its
// failing key is on.
type written struct {
	src  string
	line int
}

// TestKeyForms holds that a key means the same and fails on the same line
// whether it is written bare, quoted, dotted, under a quoted table header
// or inside an inline table: the decoder decides what is set, and the
// line scanner only says where.
func TestKeyForms(t *testing.T) {
	const zone = "\n[[zone]]\nname = \"example.test\"\nrecords = [\"@ IN A 192.0.2.1\"]\n"
	const region = "[[region]]\nname = \"r1\"\nlat = 1.0\nlon = 2.0\n"
	const pool = `region = "r1"
[record.pool.check]
type = "none"
[[record.pool.target]]
address = %s
`
	for _, tc := range []struct {
		name string
		// Each form of the configuration, %s standing for the value;
		// good and bad are the values that pass and fail.
		forms     []written
		good, bad string
		want      string // the error for bad, after "file.toml:<line>: "
	}{
		{
			name: "server.listen",
			forms: []written{
				{"[server]\nlisten = [%s]\n" + zone, 2},
				{"[server]\n\"listen\" = [%s]\n" + zone, 2},
				{"[server]\n'listen' = [%s]\n" + zone, 2},
				{"[ \"server\" ]\nlisten = [%s]\n" + zone, 2},
				{"server.listen = [%s]\n" + zone, 1},
				{"\"server\".listen = [%s]\n" + zone, 1},
				{"\"server\" . 'listen' = [%s]\n" + zone, 1},
				{"server = { listen = [%s] }\n" + zone, 1},
				{"server = { \"listen\" = [%s] }\n" + zone, 1},
				{"# listen = [\"10.0.0.1:53\"]\nserver = { listen = [\n  %s,\n] }\n" + zone, 2},
			},
			good: `"127.0.0.1:5353"`, bad: `"nope"`,
			want: `server.listen: "nope" is not host:port (write IPv6 as "[::1]:53")`,
		},
		{
			name: "server.rrl",
			forms: []written{
				{"[server.rrl]\n%s = 1\n" + zone, 2},
				{"[server.rrl]\n\"%s\" = 1\n" + zone, 2},
				{"[server.\"rrl\"]\n%s = 1\n" + zone, 2},
				{"[server]\nrrl.%s = 1\n" + zone, 2},
				{"[server]\nrrl = { %s = 1 }\n" + zone, 2},
				{"server = { rrl = { '%s' = 1 } }\n" + zone, 1},
			},
			good: "rate", bad: "bogus",
			want: "server.rrl.bogus: unknown key",
		},
		{
			name: "zone",
			forms: []written{
				{"\n[[zone]]\nname = \"example.test\"\nrecords = [%s]\n", 2},
				{"\n[[\"zone\"]]\n\"name\" = \"example.test\"\nrecords = [%s]\n", 2},
				{"\nzone = [{ name = \"example.test\", records = [%s] }]\n", 2},
				{"\nzone = [\n  { name = \"example.test\", records = [%s] },\n]\n", 3},
			},
			good: `"@ IN A 192.0.2.1"`, bad: "",
			want: `zone[0]: zone "example.test" has neither file nor records`,
		},
		{
			name: "record.pool.target",
			forms: []written{
				{region + "[[record]]\nname = \"www.example.test\"\npolicy = \"failover\"\n[[record.pool]]\n" + pool + zone, 13},
				{region + "[[\"record\"]]\nname = \"www.example.test\"\npolicy = \"failover\"\n[[ record . \"pool\" ]]\n" +
					strings.Replace(pool, "[[record.pool.target]]", "[['record'.pool.\"target\"]]", 1) + zone, 13},
				{region + "[[record]]\nname = \"www.example.test\"\npolicy = \"failover\"\n[[record.pool]]\n" +
					"region = \"r1\"\ntarget = [{ address = %s }]\ncheck = { type = \"none\" }\n\n\n" + zone, 10},
				{region + "[[record]]\nname = \"www.example.test\"\npolicy = \"failover\"\n" +
					"pool = [{ region = \"r1\", check = { type = \"none\" }, target = [{ \"address\" = %s }] }]\n" + zone, 8},
			},
			good: `"192.0.2.10"`, bad: `"nope"`,
			want: `record[0].pool[0].target[0].address: "nope" is not an IP address`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var first *Config
			for i, f := range tc.forms {
				cfg, err := Parse("file.toml", []byte(fmt.Sprintf(f.src, tc.good)))
				if err != nil {
					t.Fatalf("form %d: %v\n%s", i, err, fmt.Sprintf(f.src, tc.good))
				}
				cfg.lines = nil
				for j := range cfg.Zones {
					cfg.Zones[j].Line = 0 // where the zone is written differs
				}
				if first == nil {
					first = cfg
				} else if !reflect.DeepEqual(cfg, first) {
					t.Errorf("form %d decodes to\n%+v\nform 0 to\n%+v", i, cfg, first)
				}
				_, err = Parse("file.toml", []byte(fmt.Sprintf(f.src, tc.bad)))
				want := fmt.Sprintf("file.toml:%d: %s", f.line, tc.want)
				if err == nil || err.Error() != want {
					t.Errorf("form %d: got error\n%v\nwant\n%s", i, err, want)
				}
			}
		})
	}
}

// TestKeyFormsZoneLine holds that errors found after decoding, while the
// zone data is loaded, name the line the zone is written on in whatever
// form it is written.
func TestKeyFormsZoneLine(t *testing.T) {
	for _, f := range []written{
		{"\n[[zone]]\nname = \"example.test\"\nrecords = [\"www IN A 300.1.1.1\"]\n", 2},
		{"\n[[\"zone\"]]\nname = \"example.test\"\nrecords = [\"www IN A 300.1.1.1\"]\n", 2},
		{"\nzone = [{ name = \"example.test\", records = [\"www IN A 300.1.1.1\"] }]\n", 2},
		{"\n\n[[zone]]\nname = \"a.test\"\nrecords = [\"@ IN A 192.0.2.1\"]\n" +
			"[[zone]]\nname = \"example.test\"\nrecords = [\"www IN A 300.1.1.1\"]\n", 6},
	} {
		cfg, err := Parse("file.toml", []byte(f.src))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cfg.LoadZones()
		want := fmt.Sprintf("file.toml:%d: zone[", f.line)
		found := false
		for _, e := range errorsOf(err) {
			found = found || strings.HasPrefix(e.Error(), want) && strings.Contains(e.Error(), "300.1.1.1")
		}
		if !found {
			t.Errorf("%q: LoadZones error %v, want the bad record's at %q", f.src, err, want)
		}
	}
}
