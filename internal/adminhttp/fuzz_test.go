package adminhttp

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeStrict: any body is refused with an error or decoded, never a
// panic, and what is accepted decodes as encoding/json decodes it.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{`{"weight": 5}`, `{"weight": 5, "weight": 6}`, `{"Weight": 5}`, `null`, `{"weight": 5} x`,
		`{"weight": null}`, `{"percent": 1, "weight": 2}`, `[]`, `{`, `{"weight": 1e99}`, `{"weight": "5"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		type target struct {
			Weight  *int64 `json:"weight"`
			Percent int    `json:"percent,omitempty"`
		}
		var strict, loose target
		if err := DecodeStrict(strings.NewReader(body), &strict); err != nil {
			return
		}
		if err := json.Unmarshal([]byte(body), &loose); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
		}
		a, _ := json.Marshal(strict)
		b, _ := json.Marshal(loose)
		if string(a) != string(b) {
			t.Fatalf("%q: strict %s, encoding/json %s", body, a, b)
		}
	})
}
