package tomlfile

import (
	"fmt"
	"strconv"
	"strings"
)

// Index lists each key path written in a TOML file
// ("zone[1].file", "record[0].pool[1].target[2]") with the line it is
// written on, in the order of the file. The TOML decoder says which keys
// are set and with what values, but keeps their positions to itself, so
// lineScanner walks the source once to place them: it reads keys bare,
// quoted and dotted, tables and arrays of tables, and inline tables and
// arrays, and skips strings and comments. It decides nothing about
// presence or values, only lines for error messages.
type Index []keyAt

type keyAt struct {
	path string
	line int
	elem bool // an element of an array value ("server.listen[1]"), not a key
}

// Line returns the line of path, of the table it belongs to, or 0.
func (k Index) Line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		for _, at := range k {
			if at.path == p {
				return at.line
			}
		}
	}
	return 0
}

// At is an index of one key, for errors about a value that has come
// from elsewhere than a file of its own (a check inside another file).
func At(path string, line int) Index { return Index{{path: path, line: line}} }

// find returns every written key whose path, without array indexes, is
// dotted; the decoder reports undecoded keys that way.
func (k Index) find(dotted string) []keyAt {
	var out []keyAt
	for _, at := range k {
		if !at.elem && StripIndexes(at.path) == dotted {
			out = append(out, at)
		}
	}
	if len(out) == 0 {
		out = append(out, keyAt{path: dotted})
	}
	return out
}

// parentPath is the path of the table or array element holding p:
// "a[1].b" gives "a[1]", "a[1]" gives "a", "a" gives "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// StripIndexes removes the array indexes of a path: "a[1].b[0]" is "a.b".
func StripIndexes(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '[' {
			if j := strings.IndexByte(p[i:], ']'); j > 0 {
				i += j
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// Lines places every key of src, a file the decoder has accepted.
func Lines(src string) Index {
	s := &lineScanner{src: src, line: 1, counts: map[string]int{}, open: map[string]string{}}
	s.run()
	return s.idx
}

// lineScanner is Lines' state: where it is, the table keys are under,
// and the arrays of tables seen so far.
type lineScanner struct {
	src   string
	pos   int
	line  int
	table string // resolved path of the current table ("record[0].pool[1].check")
	idx   Index
	// counts numbers the elements of each array of tables by resolved
	// path; open maps an array's dotted name ("record.pool") to the
	// resolved path of its current element ("record[1].pool[0]").
	counts map[string]int
	open   map[string]string
}

func (s *lineScanner) run() {
	for {
		s.skipSpace(true)
		if s.pos >= len(s.src) {
			return
		}
		switch {
		case strings.HasPrefix(s.src[s.pos:], "[["):
			s.pos += 2
			s.arrayHeader(s.keyParts())
			s.skipTo(']')
		case s.src[s.pos] == '[':
			s.pos++
			s.tableHeader(s.keyParts())
			s.skipTo(']')
		default:
			s.keyValue(s.table)
		}
	}
}

// arrayHeader opens a new element of the array of tables [[name]].
func (s *lineScanner) arrayHeader(parts []string) {
	name := strings.Join(parts, ".")
	key := s.resolve(parts)
	s.table = fmt.Sprintf("%s[%d]", key, s.counts[key])
	s.counts[key]++
	s.open[name] = s.table
	for other := range s.open { // a new element closes the arrays nested in the old one
		if strings.HasPrefix(other, name+".") {
			delete(s.open, other)
		}
	}
	s.add(s.table)
}

func (s *lineScanner) tableHeader(parts []string) {
	s.table = s.resolve(parts)
	s.add(s.table)
}

// resolve turns a header's dotted name into a path under the longest open
// array of tables it extends: "record.pool" with record's element 1 open
// gives "record[1].pool".
func (s *lineScanner) resolve(parts []string) string {
	for i := len(parts) - 1; i > 0; i-- {
		if p, ok := s.open[strings.Join(parts[:i], ".")]; ok {
			return p + "." + strings.Join(parts[i:], ".")
		}
	}
	return strings.Join(parts, ".")
}

func (s *lineScanner) add(path string) { s.idx = append(s.idx, keyAt{path: path, line: s.line}) }

// keyValue reads "key = value" under prefix.
func (s *lineScanner) keyValue(prefix string) {
	parts := s.keyParts()
	if len(parts) == 0 { // not a key: step over what the decoder accepted anyway
		s.pos++
		return
	}
	path := join(prefix, strings.Join(parts, "."))
	s.add(path)
	s.skipSpace(false)
	if s.pos < len(s.src) && s.src[s.pos] == '=' {
		s.pos++
	}
	s.value(path)
}

// value skips a value, placing the keys of the inline tables in it.
func (s *lineScanner) value(path string) {
	s.skipSpace(false)
	if s.pos >= len(s.src) {
		return
	}
	switch c := s.src[s.pos]; {
	case c == '"' || c == '\'':
		s.str()
	case c == '{':
		s.pos++
		for s.skipSpace(true); s.pos < len(s.src) && s.src[s.pos] != '}'; s.skipSpace(true) {
			if s.src[s.pos] == ',' {
				s.pos++
				continue
			}
			s.keyValue(path)
		}
		s.pos++
	case c == '[':
		s.pos++
		for n := 0; ; n++ {
			if s.skipSpace(true); s.pos >= len(s.src) || s.src[s.pos] == ']' {
				s.pos++
				return
			}
			elem := fmt.Sprintf("%s[%d]", path, n)
			s.idx = append(s.idx, keyAt{path: elem, line: s.line, elem: true})
			s.value(elem)
			if s.skipSpace(true); s.pos < len(s.src) && s.src[s.pos] == ',' {
				s.pos++
			}
		}
	default: // a number, boolean or date: up to the next delimiter
		for s.pos < len(s.src) && !strings.ContainsRune(",]}#\n", rune(s.src[s.pos])) {
			s.pos++
		}
	}
}

// keyParts reads a dotted key of bare and quoted parts.
func (s *lineScanner) keyParts() []string {
	var parts []string
	for {
		s.skipSpace(false)
		if s.pos >= len(s.src) {
			return parts
		}
		switch c := s.src[s.pos]; {
		case c == '"' || c == '\'':
			parts = append(parts, s.str())
		case isBare(c):
			start := s.pos
			for s.pos < len(s.src) && isBare(s.src[s.pos]) {
				s.pos++
			}
			parts = append(parts, s.src[start:s.pos])
		default:
			return parts
		}
		s.skipSpace(false)
		if s.pos >= len(s.src) || s.src[s.pos] != '.' {
			return parts
		}
		s.pos++
	}
}

func isBare(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// str reads a string of any of TOML's four kinds and returns its content
// (escapes resolved for the one-line basic strings keys can be).
func (s *lineScanner) str() string {
	q := s.src[s.pos]
	if strings.HasPrefix(s.src[s.pos:], strings.Repeat(string(q), 3)) {
		end := strings.Repeat(string(q), 3)
		start := s.pos + 3
		i := start
		for i < len(s.src) && !strings.HasPrefix(s.src[i:], end) {
			if q == '"' && s.src[i] == '\\' {
				i++
			}
			i++
		}
		for i+3 < len(s.src) && s.src[i+3] == q { // up to two quotes end the content
			i++
		}
		s.advance(min(i+3, len(s.src)))
		return s.src[start:min(i, len(s.src))]
	}
	start := s.pos
	i := s.pos + 1
	for i < len(s.src) && s.src[i] != q && s.src[i] != '\n' {
		if q == '"' && s.src[i] == '\\' {
			i++
		}
		i++
	}
	s.advance(min(i+1, len(s.src)))
	raw := s.src[start:s.pos]
	if q == '\'' {
		return strings.Trim(raw, "'")
	}
	if u, err := strconv.Unquote(raw); err == nil {
		return u
	}
	return strings.Trim(raw, `"`)
}

// skipSpace steps over blanks and comments, and over line ends too when
// lines is set.
func (s *lineScanner) skipSpace(lines bool) {
	for s.pos < len(s.src) {
		switch c := s.src[s.pos]; {
		case c == ' ' || c == '\t' || c == '\r':
			s.pos++
		case c == '\n' && lines:
			s.advance(s.pos + 1)
		case c == '#':
			for s.pos < len(s.src) && s.src[s.pos] != '\n' {
				s.pos++
			}
		default:
			return
		}
	}
}

// skipTo steps past the next c on this line (the end of a header).
func (s *lineScanner) skipTo(c byte) {
	for s.pos < len(s.src) && s.src[s.pos] != '\n' {
		s.pos++
		if s.src[s.pos-1] == c && (s.pos >= len(s.src) || s.src[s.pos] != c) {
			return
		}
	}
}

// advance moves to pos, counting the lines it passes.
func (s *lineScanner) advance(pos int) {
	s.line += strings.Count(s.src[s.pos:pos], "\n")
	s.pos = pos
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
