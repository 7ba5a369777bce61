package config

import (
	"strconv"
	"strings"

	"github.com/meridian-gslb/meridian/internal/tomlfile"
)

// decoded is what the decoder tells of a file beyond the values: which
// keys are written (tree, the file as plain maps and slices), and where
// (lines).
type decoded struct {
	tree  map[string]any
	lines tomlfile.Index
}

// has reports whether path ("pool[0].drain_timeout") is written in the
// file, as a bare, quoted or dotted key or inside an inline table: for
// keys whose zero value means something of its own.
func (d *decoded) has(path string) bool {
	var at any = d.tree
	for _, step := range pathSteps(path) {
		switch v := at.(type) {
		case map[string]any:
			var ok bool
			if at, ok = v[step]; !ok {
				return false
			}
		case []map[string]any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(v) {
				return false
			}
			at = v[i]
		case []any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(v) {
				return false
			}
			at = v[i]
		default:
			return false
		}
	}
	return true
}

// pathSteps splits "pool[1].http.retries" into pool, 1, http, retries.
func pathSteps(path string) []string {
	return strings.FieldsFunc(path, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
}

// decodeStrict decodes src, read from name, into v (tomlfile.Decode),
// keeping what the forwarder's checks read after decoding.
func decodeStrict(name string, src []byte, v any) (*decoded, []error, error) {
	lines, tree, errs, err := tomlfile.Decode(name, src, v)
	if err != nil {
		return nil, nil, err
	}
	return &decoded{tree: tree, lines: lines}, errs, nil
}
