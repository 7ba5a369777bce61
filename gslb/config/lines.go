package config

import (
	"fmt"
	"regexp"
	"strings"
)

// keyIndex maps each key path in a TOML file ("server.listen",
// "zone[1].file") to the line it is written on. The toml decoder keeps key
// positions to itself, so a line scan recovers them: enough for the flat
// tables and arrays of tables Meridian's configuration uses.
type keyIndex []keyAt

type keyAt struct {
	path string
	line int
}

var (
	tableRe = regexp.MustCompile(`^\[\s*([A-Za-z0-9_.-]+)\s*\]`)
	arrayRe = regexp.MustCompile(`^\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]`)
	keyRe   = regexp.MustCompile(`^([A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*)\s*=`) // bare or dotted key
)

func keyLines(src string) keyIndex {
	var idx keyIndex
	table := ""
	// open maps each array of tables seen ("record", "record.pool") to the
	// resolved path of its current element ("record[1].pool[0]"), so a
	// nested [[record.pool]] lands under the record it follows.
	open := map[string]string{}
	counts := map[string]int{}
	for i, raw := range strings.Split(src, "\n") {
		line := strings.TrimSpace(raw)
		if m := arrayRe.FindStringSubmatch(line); m != nil {
			parent, leaf := resolveParent(m[1], open)
			key := parent + "." + leaf
			if parent == "" {
				key = leaf
			}
			table = fmt.Sprintf("%s[%d]", key, counts[key])
			counts[key]++
			open[m[1]] = table
			// A new element closes the arrays nested in the old one.
			for name := range open {
				if strings.HasPrefix(name, m[1]+".") {
					delete(open, name)
				}
			}
			idx = append(idx, keyAt{table, i + 1})
			continue
		}
		if m := tableRe.FindStringSubmatch(line); m != nil {
			parent, leaf := resolveParent(m[1], open)
			table = leaf
			if parent != "" {
				table = parent + "." + leaf
			}
			idx = append(idx, keyAt{table, i + 1})
			continue
		}
		if m := keyRe.FindStringSubmatch(line); m != nil {
			path := strings.Join(strings.Fields(m[1]), "") // "a . b" is "a.b"
			if table != "" {
				path = table + "." + path
			}
			idx = append(idx, keyAt{path, i + 1})
		}
	}
	return idx
}

// resolveParent splits a dotted table name into the resolved path of its
// longest open array-of-tables prefix and the rest: "record.pool" with
// record's element 1 open gives ("record[1]", "pool").
func resolveParent(name string, open map[string]string) (string, string) {
	for i := len(name) - 1; i > 0; i-- {
		if name[i] != '.' {
			continue
		}
		if p, ok := open[name[:i]]; ok {
			return p, name[i+1:]
		}
	}
	return "", name
}

// line returns the line of path, of the table it belongs to, or 0.
func (k keyIndex) line(path string) int {
	for p := path; p != ""; {
		for _, at := range k {
			if at.path == p {
				return at.line
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// find returns every written key whose path, without array indexes, is
// dotted; the decoder reports undecoded keys that way.
func (k keyIndex) find(dotted string) []keyAt {
	var out []keyAt
	for _, at := range k {
		if stripIndexes(at.path) == dotted {
			out = append(out, at)
		}
	}
	if len(out) == 0 {
		out = append(out, keyAt{dotted, 0})
	}
	return out
}

var indexRe = regexp.MustCompile(`\[\d+\]`)

func stripIndexes(p string) string { return indexRe.ReplaceAllString(p, "") }
