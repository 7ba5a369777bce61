package zones

// Lower returns s with ASCII letters lower-cased. DNS names compare
// case-insensitively over ASCII only (RFC 4343), so Unicode folding would be
// wrong; the common already-lower name is returned without allocating.
func Lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return s
}

// parent returns the name one label up from the fully qualified name, and
// false at the root. It honours "\." escapes inside a label.
func parent(name string) (string, bool) {
	if name == "." || name == "" {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++ // skip the escaped byte; \DDD digits are never '.'
		case '.':
			if i+1 == len(name) {
				return ".", true
			}
			return name[i+1:], true
		}
	}
	return ".", true
}

// isSubdomain reports whether child equals or lies below ancestor; both must be
// lower-case and fully qualified.
func isSubdomain(child, ancestor string) bool {
	if ancestor == "." {
		return true
	}
	if len(child) < len(ancestor) {
		return false
	}
	if len(child) == len(ancestor) {
		return child == ancestor
	}
	off := len(child) - len(ancestor)
	if child[off:] != ancestor || child[off-1] != '.' {
		return false
	}
	// The dot before the suffix must not itself be escaped ("a\.example.").
	bs := 0
	for i := off - 2; i >= 0 && child[i] == '\\'; i-- {
		bs++
	}
	return bs%2 == 0
}
