package zones

import (
	"errors"
	"fmt"
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
		{"z/syntax.zone", []string{"syntax.zone:3:20: dns: bad A A"}},
		{"z/badttl.zone", []string{"badttl.zone:2:12: dns: expecting $TTL value"}},
		// An error in an included file names that file and its own line.
		{"z/outer.zone", []string{filepath.FromSlash("z/inc/broken.zone") + ":2:", "bad MX"}},
		{"z/missing-include.zone", []string{"missing-include.zone:2:", "nothere.zone"}},
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

// TestIncludeConfined: $INCLUDE reads only the zone file's folder and
// below; an absolute path, a ../ escape and a symbolic link leading out
// are refused, and no error quotes a line of the file they point at.
func TestIncludeConfined(t *testing.T) {
	dir := t.TempDir()
	const secret = "root:x:0:0:the-secret-line"
	write := func(name, text string) string {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("secret.txt", secret+"\n")
	write("zones/ok/inner.zone", "inner IN A 192.0.2.7\n")
	if err := os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(dir, "zones", "link.txt")); err != nil {
		t.Fatal(err)
	}
	const head = "$TTL 300\n@ IN NS ns.example.test.\n"
	tests := []struct {
		name, include string
		ok            bool
	}{
		{"below the folder", "ok/inner.zone", true},
		{"absolute /etc/passwd", "/etc/passwd", false},
		{"absolute path of the secret", filepath.Join(dir, "secret.txt"), false},
		{"../ escape", "../secret.txt", false},
		{"../ escape that comes back", "../zones/ok/inner.zone", true},
		{"symbolic link out", "link.txt", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			zone := write("zones/main.zone", head+"$INCLUDE "+tt.include+"\n")
			rrs, err := ParseFile(nil, "example.test.", zone, 300)
			if tt.ok {
				if err != nil || len(rrs) != 2 {
					t.Fatalf("got %d records, %v; want 2", len(rrs), err)
				}
				return
			}
			if err == nil {
				t.Fatalf("$INCLUDE %s read %d records, want a refusal", tt.include, len(rrs))
			}
			msg := err.Error()
			if strings.Contains(msg, "root:") || strings.Contains(msg, "the-secret-line") {
				t.Errorf("error quotes the file: %s", msg)
			}
			if !strings.Contains(msg, zone+":3:") {
				t.Errorf("error %q does not name %s line 3", msg, zone)
			}
		})
	}
	// Every escape is refused as outside the folder, but the symbolic
	// link, which os.Root refuses in its own words.
	zone := write("zones/main.zone", head+"$INCLUDE ../secret.txt\n")
	if _, err := ParseFile(nil, "example.test.", zone, 300); !errors.Is(err, ErrIncludeOutside) {
		t.Errorf("../ escape: %v, want ErrIncludeOutside", err)
	}
}

// TestParseFileListsEveryError: a file with several bad records gets an
// error for each, at its own line, though the parser stops at the first;
// parsing resumes with the $ORIGIN and $TTL in force, and past a broken
// multi-line record (whose error the parser reports at its last line).
func TestParseFileListsEveryError(t *testing.T) {
	src := `$TTL 300
@ IN SOA ns h ( 1 2 3
      4 5 )
www IN A 192.0.2.300
ok  IN A 192.0.2.1
$ORIGIN sub.example.test.
bad IN MX mail
fine IN A 192.0.2.2
multi IN SOA ns h ( 1 2 x
      4 5 )
rel IN CNAME fine
$TTL 1h
last IN AAAA 2001:db8::zz
`
	for _, s := range sources(t, map[string]string{"z/many.zone": src}) {
		t.Run(s.name, func(t *testing.T) {
			_, err := ParseFile(s.fsys, "example.test.", s.path("z/many.zone"), 3600)
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var pe *ParseError
				if !errors.As(e, &pe) {
					t.Fatalf("%v is not a ParseError", e)
				}
				got = append(got, fmt.Sprintf("%d %s", pe.Line, pe.Msg))
			}
			want := []string{"4 dns: bad A A", "7 dns: bad MX Pref", "10 dns: bad SOA zone parameter", "13 dns: bad AAAA AAAA"}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestRedactFormat holds redact to miekg/dns's actual error text: the
// file, line and column come out, the quoted token does not.
func TestRedactFormat(t *testing.T) {
	zp := dns.NewZoneParser(strings.NewReader("\n\nwww IN A not:an\"address\n"), "example.test.", "some/file.zone")
	for _, ok := zp.Next(); ok; _, ok = zp.Next() {
	}
	pe := redact(zp.Err())
	if pe.File != "some/file.zone" || pe.Line != 3 || pe.Col == 0 || pe.Msg != "dns: bad A A" {
		t.Errorf("redact(%q) = %+v", zp.Err(), pe)
	}
	if strings.Contains(pe.Error(), "address") {
		t.Errorf("%q quotes the token", pe)
	}
}
