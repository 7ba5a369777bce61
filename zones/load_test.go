package zones

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/miekg/dns"
)

// zoneFiles is a master file with its $INCLUDEs: main.zone includes
// inc/sub.zone, which includes deeper.zone from its own folder.
var zoneFiles = map[string]string{
	"zones/main.zone": `; the SOA gives no TTL and comes before $TTL: the default applies
@ IN SOA ns.example.test. h.example.test. 2026010101 7200 3600 1209600 300
$TTL 300
@   IN NS ns.example.test.
ns  IN A  192.0.2.1
www 60 IN A 192.0.2.10
$INCLUDE inc/sub.zone
after IN TXT "the including file keeps its origin"
$ORIGIN other.example.test.
x   IN A   192.0.2.30
@   IN TXT "other"
`,
	"zones/inc/sub.zone": `$ORIGIN sub.example.test.
@ IN A 192.0.2.20
$INCLUDE deeper.zone
`,
	"zones/inc/deeper.zone": `deep IN TXT "deeper"
`,
}

var zoneFilesWant = []string{
	"example.test. 42 IN SOA ns.example.test. h.example.test. 2026010101 7200 3600 1209600 300",
	"example.test. 300 IN NS ns.example.test.",
	"ns.example.test. 300 IN A 192.0.2.1",
	"www.example.test. 60 IN A 192.0.2.10",
	"sub.example.test. 300 IN A 192.0.2.20",
	`deep.sub.example.test. 300 IN TXT "deeper"`,
	`after.example.test. 300 IN TXT "the including file keeps its origin"`,
	"x.other.example.test. 300 IN A 192.0.2.30",
	`other.example.test. 300 IN TXT "other"`,
}

// source is one place zone files are read from: the operating system (a
// temporary folder) or an fs.FS.
type source struct {
	name string
	fsys fs.FS
	path func(name string) string // the path ParseFile is given for a file
}

func sources(t *testing.T, files map[string]string) []source {
	t.Helper()
	dir := t.TempDir()
	mapFS := fstest.MapFS{}
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		mapFS[name] = &fstest.MapFile{Data: []byte(text)}
	}
	return []source{
		{"os", nil, func(name string) string { return filepath.Join(dir, filepath.FromSlash(name)) }},
		{"fs", mapFS, func(name string) string { return name }},
	}
}

func TestParseFile(t *testing.T) {
	for _, src := range sources(t, zoneFiles) {
		t.Run(src.name, func(t *testing.T) {
			rrs, err := ParseFile(src.fsys, "example.test.", src.path("zones/main.zone"), 42)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := section(rrs), wantSection(t, zoneFilesWant); got != want {
				t.Errorf("records:\n got:\n%s\nwant:\n%s", got, want)
			}
			// What was read builds into a zone.
			if _, err := Build("example.test.", rrs); err != nil {
				t.Errorf("Build: %v", err)
			}
		})
	}
}

func TestParseFileErrors(t *testing.T) {
	files := map[string]string{
		"z/syntax.zone": "$TTL 300\n@ IN NS ns.example.test.\nwww IN A 192.0.2.300\n",
		"z/badttl.zone": "$TTL 300\n$TTL forever\n",
		"z/outer.zone":  "$TTL 300\n@ IN NS ns.example.test.\n$INCLUDE inc/broken.zone\n",
		"z/inc/broken.zone": "ok IN A 192.0.2.1\n" +
			"bad IN MX mail.example.test.\n",
		"z/missing-include.zone": "$TTL 300\n$INCLUDE nothere.zone\n",
	}
	tests := []struct {
		file string
		want []string // each must appear in the error
	}{
		{"z/syntax.zone", []string{"syntax.zone", "192.0.2.300", "line: 3:"}},
		{"z/badttl.zone", []string{"badttl.zone", "forever", "line: 2:"}},
		// An error in an included file names that file and its own line.
		{"z/outer.zone", []string{filepath.FromSlash("inc/broken.zone"), "line: 2:"}},
		{"z/missing-include.zone", []string{"missing-include.zone", "nothere.zone", "line: 2:"}},
	}
	for _, src := range sources(t, files) {
		for _, tc := range tests {
			t.Run(src.name+"/"+tc.file, func(t *testing.T) {
				rrs, err := ParseFile(src.fsys, "example.test.", src.path(tc.file), 3600)
				if err == nil {
					t.Fatalf("no error; read %d records", len(rrs))
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
			})
		}
		t.Run(src.name+"/no such file", func(t *testing.T) {
			_, err := ParseFile(src.fsys, "example.test.", src.path("z/absent.zone"), 3600)
			if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "absent.zone") {
				t.Errorf("err = %v, want fs.ErrNotExist naming absent.zone", err)
			}
		})
	}
}

func TestParseRecord(t *testing.T) {
	tests := []struct {
		origin, line string
		ttl          uint32
		want         string
	}{
		{"example.test.", "@ IN A 192.0.2.1", 3600, "example.test. 3600 IN A 192.0.2.1"},
		{"example.test", "@ IN A 192.0.2.1", 3600, "example.test. 3600 IN A 192.0.2.1"},
		{"example.test.", "www IN A 192.0.2.10", 120, "www.example.test. 120 IN A 192.0.2.10"},
		{"example.test.", "www 60 IN A 192.0.2.10", 120, "www.example.test. 60 IN A 192.0.2.10"},
		{"example.test.", "a.b IN AAAA 2001:db8::1", 300, "a.b.example.test. 300 IN AAAA 2001:db8::1"},
		{"example.test.", "www.example.org. 30 IN A 192.0.2.1", 300, "www.example.org. 30 IN A 192.0.2.1"},
		{"example.test.", "api.example.test. IN A 192.0.2.1", 300, "api.example.test. 300 IN A 192.0.2.1"},
		// Names inside the data are relative to the zone too.
		{"example.test.", "_https._tcp 300 IN SRV 10 5 443 www", 3600, "_https._tcp.example.test. 300 IN SRV 10 5 443 www.example.test."},
		{"example.test.", "alias IN CNAME @", 3600, "alias.example.test. 3600 IN CNAME example.test."},
		{"example.test.", `@ IN TXT "v=spf1 -all" ; a comment`, 3600, `example.test. 3600 IN TXT "v=spf1 -all"`},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			rr, err := ParseRecord(tc.origin, tc.line, tc.ttl)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := section([]dns.RR{rr}), wantSection(t, []string{tc.want}); got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

func TestParseRecordErrors(t *testing.T) {
	tests := []struct {
		line string
		want string
	}{
		{"", "found 0"},
		{"; only a comment", "found 0"},
		{"$TTL 60", "found 0"},
		{"a IN A 192.0.2.1\nb IN A 192.0.2.2", "found 2"},
		{"www IN A not-an-address", "not-an-address"},
		{"www IN BOGUS 1", "BOGUS"},
		{"$INCLUDE /etc/hostname", "$INCLUDE directive not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			rr, err := ParseRecord("example.test.", tc.line, 3600)
			if err == nil {
				t.Fatalf("no error; parsed %v", rr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}
