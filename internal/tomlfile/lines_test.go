package tomlfile

import "testing"

// Errors name the line of keys however they are written.
func TestKeyLines(t *testing.T) {
	src := `# comment with key = "x"
[log]
"level" = "info" # [pool]
[[pool]]
name = "a ] [[x]]"
text = """
not_a_key = 1
"""
outlier = { consecutive_failures = 3, 'max_ejection_percent' = 5 }
http.retries = 2
backend = [
  { address = "x:1" },
  { address = "y:2" },
]
[[pool]]
name = "b"
[[pool.backend]]
address = "z:1"
[pool.check]
type = "tcp"
`
	lines := Lines(src)
	for path, want := range map[string]int{
		"log": 2, "log.level": 3, "pool[0]": 4, "pool[0].name": 5, "pool[0].text": 6,
		"pool[0].outlier.consecutive_failures": 9, "pool[0].outlier.max_ejection_percent": 9,
		"pool[0].http.retries": 10, "pool[0].backend[1].address": 13, "pool[1].name": 16,
		"pool[1].backend[0].address": 18, "pool[1].check.type": 20, "pool[1].check.interval": 19,
		"not_a_key": 0, "pool[0].not_a_key": 4,
	} {
		if got := lines.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
}
