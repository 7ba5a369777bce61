package adminhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// DecodeStrict reads one JSON object from body into v, a pointer to a
// struct whose fields carry json tags, and refuses what encoding/json
// would let through quietly: a body that is not an object (null
// included), an unknown key, a key in another case than the tag's
// ({"Weight": 5} for "weight"), a key given twice, a null value, a value
// of the wrong type, and anything after the object. The error names the
// key. Only the object's own keys are checked: the APIs' bodies are flat.
func DecodeStrict(body io.Reader, v any) error {
	data, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("the body is empty: want a JSON object")
	}
	fields := jsonFields(v)
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := checkObject(dec, fields); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("key %q: want %s, not a JSON %s", te.Field, jsonKind(te.Type), te.Value)
		}
		return fmt.Errorf("not valid JSON: %w", err)
	}
	return nil
}

// checkObject walks the object's keys with the decoder's tokens: unknown,
// mis-cased, repeated and null keys are refused.
func checkObject(dec *json.Decoder, fields []string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("the body must be a JSON object, not %s", describe(tok))
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("not valid JSON: %w", err)
		}
		key := tok.(string) // an object's keys are strings, or Token fails
		if err := checkKey(key, fields, seen); err != nil {
			return err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("key %q: not valid JSON: %w", key, err)
		}
		if string(raw) == "null" {
			return fmt.Errorf("key %q is null: give it a value or leave it out", key)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return fmt.Errorf("not valid JSON: %w", err)
	}
	return nil
}

func checkKey(key string, fields []string, seen map[string]bool) error {
	if seen[key] {
		return fmt.Errorf("key %q appears twice", key)
	}
	seen[key] = true
	for _, f := range fields {
		if f == key {
			return nil
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f, key) {
			return fmt.Errorf("unknown key %q: keys are case-sensitive, did you mean %q?", key, f)
		}
	}
	return fmt.Errorf("unknown key %q (known: %s)", key, strings.Join(fields, ", "))
}

// describe names a JSON value that is not an object.
func describe(tok json.Token) string {
	switch t := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return fmt.Sprint(t)
	}
	return fmt.Sprintf("%v", tok)
}

// jsonFields is the keys v's struct accepts, by their json tags (or field
// names, as encoding/json takes them).
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// jsonKind names a Go type as JSON calls its values.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	}
	return "a " + t.String()
}
