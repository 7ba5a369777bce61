package zones

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// MaxFileErrors bounds the errors ParseFile lists for one file: past it,
// the rest of the file is not read.
const MaxFileErrors = 20

// ErrIncludeOutside is why an $INCLUDE of a file outside the including
// zone file's folder is refused: a zone file must not become a way to read
// (and echo in errors) any file the server can read.
var ErrIncludeOutside = errors.New("$INCLUDE may only read files in the zone file's folder or below it (or in the zone's include_root)")

// ParseFile reads an RFC 1035 master file for origin from fsys, or from the
// operating system when fsys is nil. $ORIGIN, $TTL and $INCLUDE are honoured;
// included paths are relative to the including file and confined to the
// zone file's folder (symbolic links leading out of it included).
//
// Every error found is returned (joined, at most MaxFileErrors): after a
// syntax error, parsing resumes at the next line that starts a new entry
// in the first column. Each error names the file, line and column and what
// is wrong, but never quotes the file's text, so that errors that leave
// the host (the admin API's reload answer) carry no file content.
func ParseFile(fsys fs.FS, origin, file string, defaultTTL uint32) ([]dns.RR, error) {
	return ParseFileWithin(fsys, "", origin, file, defaultTTL)
}

// ParseFileWithin is ParseFile with $INCLUDE confined to root, a folder
// (of fsys, or of the operating system when fsys is nil) that holds the
// file; "" is the file's own folder.
func ParseFileWithin(fsys fs.FS, root, origin, file string, defaultTTL uint32) ([]dns.RR, error) {
	var (
		src []byte
		err error
	)
	if fsys != nil {
		src, err = fs.ReadFile(fsys, file)
	} else {
		src, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("open zone file: %w", err)
	}
	if root == "" {
		root = filepath.Dir(file)
		if fsys != nil {
			root = path.Dir(file)
		}
	}
	inc, done, err := confine(fsys, root)
	if err != nil {
		return nil, fmt.Errorf("zone file %s: include root: %w", file, err)
	}
	defer done()
	return parseAll(src, origin, file, defaultTTL, inc)
}

// ParseRecord parses one record written as a master-file line, relative to
// origin ("@" is the apex, names without a final dot are below it).
func ParseRecord(origin, line string, defaultTTL uint32) (dns.RR, error) {
	zp := dns.NewZoneParser(strings.NewReader(line), dns.Fqdn(origin), "")
	zp.SetDefaultTTL(defaultTTL)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	if len(rrs) != 1 {
		return nil, fmt.Errorf("want exactly one record, found %d", len(rrs))
	}
	return rrs[0], nil
}

// parseAll parses src, resuming after each syntax error of the file
// itself (an error inside an included file ends the parse: its lines are
// not the including file's). Resuming feeds the parser the rest of the
// file behind as many empty lines as were consumed, so line numbers stay
// true, with the $ORIGIN and $TTL in force at that line.
func parseAll(src []byte, origin, file string, defaultTTL uint32, inc fs.FS) ([]dns.RR, error) {
	lines := bytes.SplitAfter(src, []byte("\n"))
	var (
		rrs  []dns.RR
		errs []error
	)
	start := 0 // the line, 0-based, this attempt begins at
	for len(errs) < MaxFileErrors {
		in := io.MultiReader(strings.NewReader(strings.Repeat("\n", start)), bytes.NewReader(bytes.Join(lines[start:], nil)))
		o, ttl := directivesBefore(lines[:start], dns.Fqdn(origin), defaultTTL)
		zp := dns.NewZoneParser(in, o, file)
		zp.SetDefaultTTL(ttl)
		zp.SetIncludeAllowed(true)
		zp.SetIncludeFS(inc)
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			rrs = append(rrs, rr)
		}
		err := zp.Err()
		if err == nil {
			break
		}
		pe := redact(err)
		if strings.HasPrefix(file, "/") && !strings.HasPrefix(pe.File, "/") {
			pe.File = "/" + pe.File // an included file, named as the parser opened it
		}
		errs = append(errs, pe)
		if pe.File != file || pe.Line < 1 {
			break
		}
		if start = nextEntry(lines, pe.Line); start >= len(lines) {
			break
		}
	}
	if len(errs) >= MaxFileErrors {
		errs = append(errs, fmt.Errorf("%s: more than %d errors; the rest of the file was not read", file, MaxFileErrors))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rrs, nil
}

// nextEntry is the first line, 0-based, after the 1-based line bad that
// starts a new entry: text in the first column that is not a comment or
// the close of a multi-line record.
func nextEntry(lines [][]byte, bad int) int {
	i := bad
	for ; i < len(lines); i++ {
		if l := lines[i]; len(l) > 0 && !strings.ContainsRune(" \t\r\n;)", rune(l[0])) {
			break
		}
	}
	return i
}

// directivesBefore is the origin and default TTL the lines set, for a
// parse that resumes after them: the last $ORIGIN and $TTL (a relative
// $ORIGIN is taken relative to the one before, as the parser does).
func directivesBefore(lines [][]byte, origin string, ttl uint32) (string, uint32) {
	for _, l := range lines {
		f := strings.Fields(string(l))
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "$ORIGIN":
			if dns.IsFqdn(f[1]) {
				origin = f[1]
			} else {
				origin = f[1] + "." + origin
			}
		case "$TTL":
			if v, ok := parseTTL(f[1]); ok {
				ttl = v
			}
		}
	}
	return origin, ttl
}

// parseTTL reads a TTL as $TTL takes it: seconds, or BIND's units
// (1h30m, 2d).
func parseTTL(s string) (uint32, bool) {
	var total, n uint64
	digits := false
	for _, r := range strings.ToLower(s) {
		if r >= '0' && r <= '9' {
			n, digits = n*10+uint64(r-'0'), true
			continue
		}
		unit := map[rune]uint64{'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}[r]
		if unit == 0 || !digits {
			return 0, false
		}
		total, n, digits = total+n*unit, 0, false
	}
	total += n
	return uint32(total), total <= 1<<32-1
}

// ParseError is an error in a zone file: where, and what is wrong, without
// the text it was found in.
type ParseError struct {
	File      string
	Line, Col int // 0 when unknown
	Msg       string
	err       error // what the parser wrapped (a failed open), for errors.Is
}

// Unwrap is the error the parser wrapped, as when $INCLUDE could not open
// a file (ErrIncludeOutside, fs.ErrNotExist).
func (e *ParseError) Unwrap() error { return e.err }

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// redact turns the zone parser's error into a ParseError without the
// token it quotes (which can be a line of any file $INCLUDE read).
// miekg/dns gives no accessors, so this reads its Error text, whose
// format is "FILE: dns: MESSAGE: "TOKEN" at line: L:C" with the token
// quoted by strconv.QuoteToASCII (so it holds no bare `: "`);
// TestRedactFormat holds it to the library's actual output.
func redact(err error) *ParseError {
	s := err.Error()
	pe := &ParseError{Msg: "dns: unreadable zone data", err: errors.Unwrap(err)}
	at := strings.LastIndex(s, " at line: ")
	if at < 0 {
		pe.File = s
		return pe
	}
	l, c, _ := strings.Cut(s[at+len(" at line: "):], ":")
	pe.Line, _ = strconv.Atoi(l)
	pe.Col, _ = strconv.Atoi(c)
	head := s[:at]
	if q := strings.LastIndex(head, `: "`); q >= 0 {
		head = head[:q]
	}
	if file, msg, ok := strings.Cut(head, ": dns: "); ok {
		pe.File, pe.Msg = file, "dns: "+msg
	}
	return pe
}

// confine is the fs.FS $INCLUDE opens files through: root and below,
// nothing else. On the operating system it is an os.Root, which also
// refuses symbolic links that lead out of root; done closes it.
func confine(fsys fs.FS, root string) (fs.FS, func(), error) {
	if fsys != nil {
		return &confined{dir: fsPath(root), fsys: fsys, full: true}, func() {}, nil
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, nil, err
	}
	return &confined{dir: fsPath(filepath.ToSlash(root)), fsys: r.FS()}, func() { r.Close() }, nil
}

// fsPath is a folder as the zone parser shapes the paths it opens:
// cleaned, slash-separated, without a leading slash.
func fsPath(dir string) string { return strings.TrimLeft(path.Clean(dir), "/") }

// confined opens the paths the zone parser asks for (the including file's
// folder joined with the $INCLUDE path, cleaned, leading slash dropped)
// when they are in dir, relative to dir in fsys (or whole, when full:
// fsys is the configuration's own FS).
type confined struct {
	dir  string
	fsys fs.FS
	full bool
}

func (c *confined) Open(name string) (fs.File, error) {
	rel := name
	if c.dir != "." {
		var ok bool
		if rel, ok = strings.CutPrefix(name, c.dir+"/"); !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: ErrIncludeOutside}
		}
	}
	if !fs.ValidPath(rel) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: ErrIncludeOutside}
	}
	if c.full {
		return c.fsys.Open(name)
	}
	return c.fsys.Open(rel)
}
