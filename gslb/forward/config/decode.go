package config

import (
	"encoding"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// decoded is what the decoder tells of a file beyond the values: which
// keys are written (tree, the file as plain maps and slices), and where
// (lines).
type decoded struct {
	tree  map[string]any
	lines keyIndex
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

// decodeStrict decodes src, read from name, into v. A syntax or type error
// is returned alone, located; otherwise every key v has no field for comes
// back as an error of its own.
func decodeStrict(name string, src []byte, v any) (*decoded, []error, error) {
	d := &decoded{}
	if _, err := toml.Decode(string(src), &d.tree); err != nil {
		return nil, nil, parseError(name, err)
	}
	d.lines = keyLines(string(src))
	md, err := toml.Decode(string(src), v)
	if err != nil {
		// Type mismatches (listen = 5) are not ParseErrors, and the
		// decoder tells their key only in its text: find it in the tree.
		if path, ok := mismatch(d.tree, reflect.TypeOf(v), ""); ok {
			return nil, nil, fmt.Errorf("%s:%d: %s: %w", name, d.lines.line(path), stripIndexes(path), err)
		}
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return d, unknownKeys(name, md, d.lines), nil
}

func parseError(name string, err error) error {
	var pe toml.ParseError
	switch {
	case !errors.As(err, &pe):
		return fmt.Errorf("%s: %w", name, err)
	case pe.LastKey != "":
		return fmt.Errorf("%s:%d: %s: %s", name, pe.Position.Line, pe.LastKey, pe.Message)
	default:
		return fmt.Errorf("%s:%d: %s", name, pe.Position.Line, pe.Message)
	}
}

// unknownKeys reports each key the decoder found no field for, once for
// every place it is written.
func unknownKeys(name string, md toml.MetaData, lines keyIndex) []error {
	// The decoder lists a key once per table it is in ([[pool]] twice
	// with the same unknown key lists it twice), and find returns every
	// line.
	undecoded := map[string]bool{}
	var unknown []toml.Key
	for _, k := range md.Undecoded() {
		if !undecoded[k.String()] {
			undecoded[k.String()] = true
			unknown = append(unknown, k)
		}
	}
	var errs []error
	for _, k := range unknown {
		if len(k) > 1 && undecoded[k[:len(k)-1].String()] {
			continue // the unknown table is reported, not each key in it
		}
		for _, at := range lines.find(strings.Join(k, ".")) {
			errs = append(errs, fmt.Errorf("%s:%d: %s: unknown key", name, at.line, at.path))
		}
	}
	return errs
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// mismatch returns the path of the first value of tree that a field of
// type t cannot hold, as the decoder decides it; false if there is none
// it can name.
func mismatch(tree any, t reflect.Type, path string) (string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		_, ok := tree.(string)
		return path, !ok
	}
	switch v := tree.(type) {
	case map[string]any:
		return mismatchTable(v, t, path)
	case []map[string]any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return path, true
		}
		for i, e := range v {
			if p, bad := mismatch(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); bad {
				return p, true
			}
		}
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return path, true
		}
		for i, e := range v {
			if p, bad := mismatch(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); bad {
				return p, true
			}
		}
	default:
		return path, !scalarFits(tree, t.Kind())
	}
	return "", false
}

func mismatchTable(m map[string]any, t reflect.Type, path string) (string, bool) {
	switch t.Kind() {
	case reflect.Map:
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if p, bad := mismatch(m[k], t.Elem(), join(path, k)); bad {
				return p, true
			}
		}
		return "", false
	case reflect.Struct:
	case reflect.Interface:
		return "", false
	default:
		return path, true
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if v, ok := m[name]; ok {
			if p, bad := mismatch(v, f.Type, join(path, name)); bad {
				return p, true
			}
		}
	}
	return "", false
}

// scalarFits reports whether the decoder puts a TOML scalar into a field
// of kind k.
func scalarFits(v any, k reflect.Kind) bool {
	switch v.(type) {
	case string:
		return k == reflect.String || k == reflect.Interface
	case bool:
		return k == reflect.Bool || k == reflect.Interface
	case int64:
		return k >= reflect.Int && k <= reflect.Float64 || k == reflect.Interface
	case float64:
		return k == reflect.Float32 || k == reflect.Float64 || k == reflect.Interface
	}
	return true // dates and times: not ours to judge
}
