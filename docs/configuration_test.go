package docs

import (
	"bufio"
	"encoding"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/meridian-gslb/meridian/gslb/config"
	fwdconfig "github.com/meridian-gslb/meridian/gslb/forward/config"
)

// The configuration files configuration.md documents, by the name its
// <!-- keys: NAME --> markers give them, and the Go type the TOML decoder
// fills for each. When the forwarder's types move to a package of their
// own, change the import above and the "forward.toml" line: nothing else
// here names them. (They moved to gslb/forward/config.)
var configFiles = map[string]reflect.Type{
	"meridian.toml": reflect.TypeFor[config.Config](),
	"forward.toml":  reflect.TypeFor[fwdconfig.Forward](),
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	tomlUnmarshaler = reflect.TypeFor[toml.Unmarshaler]()
)

// tomlKeys walks t's fields as the decoder does (toml tags; untagged
// exported fields by name; embedded structs flattened; pointers, slices and
// arrays of tables followed) and records each key's dotted path: leaves
// are values, tables are keys holding a table or an array of tables.
func tomlKeys(t reflect.Type, prefix string, leaves, tables map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array {
			ft = ft.Elem()
		}
		if name == "" && f.Anonymous && isTable(ft) {
			tomlKeys(ft, prefix, leaves, tables)
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := prefix + name
		if isTable(ft) {
			tables[path] = true
			tomlKeys(ft, path+".", leaves, tables)
		} else {
			leaves[path] = true
		}
	}
}

// isTable reports whether values of t are decoded as TOML tables of keys
// the decoder knows (a struct without an unmarshaler of its own).
func isTable(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	p := reflect.PointerTo(t)
	return !p.Implements(textUnmarshaler) && !p.Implements(tomlUnmarshaler)
}

var (
	keysMarker   = regexp.MustCompile(`^<!-- keys: ([a-z.]+) -->$`)
	headingTable = regexp.MustCompile("^#{2,4} .*?`\\[{1,2}([a-z0-9_.]+)\\]{1,2}`")
	cellKey      = regexp.MustCompile("`([a-z0-9_]+)`")
)

// documentedKeys reads configuration.md: after a <!-- keys: FILE -->
// marker, a heading whose first backticked text is a table (`[server]`,
// `[[record.pool]]`) starts that table's keys, and each row of a Markdown
// table under it names keys in backticks in its first cell. It returns,
// per file, each documented key's dotted path with the line it is on.
func documentedKeys(t *testing.T) map[string]map[string]int {
	t.Helper()
	f, err := os.Open("configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs := map[string]map[string]int{}
	file, table := "", ""
	fenced := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if fenced {
			continue
		}
		if m := keysMarker.FindStringSubmatch(line); m != nil {
			file, table = m[1], ""
			if docs[file] == nil {
				docs[file] = map[string]int{}
			}
			continue
		}
		if strings.HasPrefix(line, "#") {
			table = ""
			if m := headingTable.FindStringSubmatch(line); m != nil && file != "" {
				table = m[1]
			}
			continue
		}
		if file == "" || table == "" || !strings.HasPrefix(line, "|") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		for _, m := range cellKey.FindAllStringSubmatch(first, -1) {
			docs[file][table+"."+m[1]] = n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return docs
}

// TestConfigurationKeys holds docs/configuration.md to the decoder: every
// key it accepts is documented, and every documented key is one it
// accepts.
func TestConfigurationKeys(t *testing.T) {
	docs := documentedKeys(t)
	for _, file := range sortedKeys(configFiles) {
		leaves, tables := map[string]bool{}, map[string]bool{}
		tomlKeys(configFiles[file], "", leaves, tables)
		if len(leaves) < 20 {
			t.Fatalf("%s: only %d keys found by reflection", file, len(leaves))
		}
		documented := docs[file]
		if documented == nil {
			t.Errorf("configuration.md has no <!-- keys: %s --> section", file)
			continue
		}
		for _, key := range sortedKeys(leaves) {
			if _, ok := documented[key]; !ok {
				t.Errorf("%s: key %s is accepted but not documented in configuration.md", file, key)
			}
		}
		for _, key := range sortedKeys(documented) {
			if !leaves[key] && !tables[key] {
				t.Errorf("configuration.md:%d: %s: key %s is documented but the decoder does not accept it", documented[key], file, key)
			}
		}
	}
	for _, file := range sortedKeys(docs) {
		if configFiles[file] == nil {
			t.Errorf("configuration.md documents keys of %s, a file no type decodes (known: %v)", file, sortedKeys(configFiles))
		}
	}
}

// TestConfigurationKeysWalk checks the walk itself on the shapes it must
// follow, so a green TestConfigurationKeys means what it says.
func TestConfigurationKeysWalk(t *testing.T) {
	type inner struct {
		A int `toml:"a"`
	}
	type Embedded struct {
		E int `toml:"e"`
	}
	type shape struct {
		Embedded
		Plain    string            `toml:"plain"`
		Skipped  string            `toml:"-"`
		hidden   string            // unexported: the decoder ignores it
		Table    inner             `toml:"table"`
		Array    []inner           `toml:"array"`
		Ptr      *inner            `toml:"ptr"`
		Map      map[string]string `toml:"map"`
		Duration config.Duration   `toml:"duration"`
		Untagged int
	}
	leaves, tables := map[string]bool{}, map[string]bool{}
	tomlKeys(reflect.TypeFor[shape](), "", leaves, tables)
	wantLeaves := []string{"Untagged", "array.a", "duration", "e", "map", "plain", "ptr.a", "table.a"}
	if got := sortedKeys(leaves); !slices.Equal(got, wantLeaves) {
		t.Errorf("leaves %v, want %v", got, wantLeaves)
	}
	if got, want := sortedKeys(tables), []string{"array", "ptr", "table"}; !slices.Equal(got, want) {
		t.Errorf("tables %v, want %v", got, want)
	}
	_ = shape{}.hidden
}
