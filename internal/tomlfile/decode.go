package tomlfile

import (
	"encoding"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Decode decodes src, read from name, into v. A syntax or type error
// is returned alone, located ("name:line: key: message"); otherwise every
// key v has no field for comes back as an error of its own. It also
// returns where each key is written, for the checks that follow decoding,
// and the file as plain maps and slices, which says which keys are written
// at all (bare, quoted, dotted or in an inline table).
func Decode(name string, src []byte, v any) (Index, map[string]any, []error, error) {
	var tree map[string]any
	if _, err := toml.Decode(string(src), &tree); err != nil {
		return nil, nil, nil, parseError(name, err)
	}
	lines := Lines(string(src))
	md, err := toml.Decode(string(src), v)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) { // a value its field's decoder refused
			return nil, nil, nil, parseError(name, err)
		}
		// Type mismatches (listen = 5) are not ParseErrors, and the
		// decoder does not say which key: find it in the tree.
		if path, msg, ok := mismatch(tree, reflect.TypeOf(v), ""); ok {
			return nil, nil, nil, fmt.Errorf("%s:%d: %s: %s", name, lines.Line(path), StripIndexes(path), msg)
		}
		return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return lines, tree, unknownKeys(name, md, lines), nil
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
func unknownKeys(name string, md toml.MetaData, lines Index) []error {
	// The decoder lists a key once per table it is in ([[zone]] twice
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
// type t cannot hold, as the decoder decides it, and the decoder's words
// for it; false if there is none it can name.
func mismatch(tree any, t reflect.Type, path string) (string, string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		if _, ok := tree.(string); !ok {
			return path, incompatible(tree, "primitive (string-like)"), true
		}
		return "", "", false
	}
	switch v := tree.(type) {
	case map[string]any:
		return mismatchTable(v, t, path)
	case []map[string]any:
		return mismatchArray(v, t, path)
	case []any:
		return mismatchArray(v, t, path)
	}
	if t.Kind() == reflect.Struct {
		return path, fmt.Sprintf("type mismatch for %s: expected table but found %s", t, typeName(tree)), true
	}
	if dst, ok := scalarFits(tree, t.Kind()); !ok {
		return path, incompatible(tree, dst), true
	}
	return "", "", false
}

func mismatchArray[E any](v []E, t reflect.Type, path string) (string, string, bool) {
	if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
		return path, incompatible(v, kindName(t.Kind())), true
	}
	for i, e := range v {
		if p, msg, bad := mismatch(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); bad {
			return p, msg, true
		}
	}
	return "", "", false
}

func mismatchTable(m map[string]any, t reflect.Type, path string) (string, string, bool) {
	switch t.Kind() {
	case reflect.Map:
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if p, msg, bad := mismatch(m[k], t.Elem(), join(path, k)); bad {
				return p, msg, true
			}
		}
		return "", "", false
	case reflect.Struct:
	case reflect.Interface:
		return "", "", false
	default:
		return path, incompatible(m, kindName(t.Kind())), true
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if v, ok := m[name]; ok {
			if p, msg, bad := mismatch(v, f.Type, join(path, name)); bad {
				return p, msg, true
			}
		}
	}
	return "", "", false
}

// incompatible is the decoder's message for a value its field cannot hold.
func incompatible(v any, dst string) string {
	return fmt.Sprintf("incompatible types: TOML value has type %s; destination has type %s", typeName(v), dst)
}

func typeName(v any) string { return strings.ReplaceAll(fmt.Sprintf("%T", v), "interface {}", "any") }

// kindName is the decoder's name for a field of kind k.
func kindName(k reflect.Kind) string {
	switch {
	case k == reflect.Slice || k == reflect.Array:
		return "slice"
	case k >= reflect.Int && k <= reflect.Uint64:
		return "integer"
	case k == reflect.Float32 || k == reflect.Float64:
		return "float"
	case k == reflect.Bool:
		return "boolean"
	}
	return k.String()
}

// scalarFits reports whether the decoder puts a TOML scalar into a field
// of kind k, and if not, the decoder's name for the field.
func scalarFits(v any, k reflect.Kind) (string, bool) {
	var ok bool
	switch v.(type) {
	case string:
		ok = k == reflect.String
	case bool:
		ok = k == reflect.Bool
	case int64:
		ok = k >= reflect.Int && k <= reflect.Float64
	case float64:
		ok = k == reflect.Float32 || k == reflect.Float64
	default:
		return "", true // dates and times: not ours to judge
	}
	return kindName(k), ok || k == reflect.Interface
}

// Problem is what a component's own validation found wrong with one of its
// keys; the configuration that holds the component's table adds the
// table's key, the file and the line.
type Problem struct {
	Key string // relative to the component's table; "" for the table itself
	Msg string
}

// Duration is a time.Duration written as a Go duration string ("10s").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. \"10s\"): %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
