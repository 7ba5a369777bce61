package zones

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/miekg/dns"
)

// ParseFile reads an RFC 1035 master file for origin from fsys, or from the
// operating system when fsys is nil. $ORIGIN, $TTL and $INCLUDE are honoured;
// included paths are relative to the including file. Errors carry the file
// name and line, as the zone parser reports them.
func ParseFile(fsys fs.FS, origin, path string, defaultTTL uint32) ([]dns.RR, error) {
	var (
		f   io.ReadCloser
		err error
	)
	if fsys != nil {
		f, err = fsys.Open(path)
	} else {
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("open zone file: %w", err)
	}
	defer f.Close()
	return parse(f, origin, path, defaultTTL, fsys, true)
}

// ParseRecord parses one record written as a master-file line, relative to
// origin ("@" is the apex, names without a final dot are below it).
func ParseRecord(origin, line string, defaultTTL uint32) (dns.RR, error) {
	rrs, err := parse(strings.NewReader(line), origin, "", defaultTTL, nil, false)
	if err != nil {
		return nil, err
	}
	if len(rrs) != 1 {
		return nil, fmt.Errorf("want exactly one record, found %d", len(rrs))
	}
	return rrs[0], nil
}

func parse(r io.Reader, origin, file string, defaultTTL uint32, fsys fs.FS, include bool) ([]dns.RR, error) {
	zp := dns.NewZoneParser(r, dns.Fqdn(origin), file)
	zp.SetDefaultTTL(defaultTTL)
	if include {
		zp.SetIncludeAllowed(true)
		if fsys != nil {
			zp.SetIncludeFS(fsys)
		}
	}
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	return rrs, nil
}
