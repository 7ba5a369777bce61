package zones

import (
	"testing"
	"testing/fstest"
)

// FuzzZone feeds master files to the parser and builds and queries the
// zone: a bad file must be an error, never a crash (a crash here would take
// down a reload, or the server at start).
func FuzzZone(f *testing.F) {
	for _, seed := range []string{
		"$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN CNAME @\n*.w IN TXT \"x\"\n",
		"@ IN SOA ns1 h 1 2 3 4 5\nsub IN NS ns.sub\nns.sub IN A 192.0.2.2\n$ORIGIN sub.example.test.\nx IN MX 10 mail\n",
		"$INCLUDE other.zone\n@ IN SOA a b 1 2 3 4 5\n",
		"@ IN SOA ( a b 1 2 3\n 4 5 )\n@ 60 IN AAAA ::1\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		fsys := fstest.MapFS{
			"z.zone":     {Data: []byte(text)},
			"other.zone": {Data: []byte("www IN A 192.0.2.3\n")},
		}
		rrs, err := ParseFile(fsys, "example.test.", "z.zone", 3600)
		if err != nil {
			return
		}
		z, err := Build("example.test.", rrs)
		if err != nil {
			return
		}
		for _, name := range []string{"example.test.", "www.example.test.", "x.sub.example.test.", "a.w.example.test.", "nope.example.test."} {
			for _, qtype := range []uint16{1, 2, 5, 6, 15, 16, 28, 255} {
				z.Lookup(name, qtype)
			}
		}
	})
}
