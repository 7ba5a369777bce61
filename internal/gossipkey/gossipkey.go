package gossipkey

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Parse reads a gossip key written in base64, as `openssl rand -base64
// 32` prints it.
func Parse(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("key is not base64: %w", err)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("key is %d bytes; it must be 16, 24 or 32 (AES-128, -192, -256)", len(k))
}

// ParseFile reads a key file: one base64 key per line, the first the one
// that encrypts; blank lines and # comments are skipped.
func ParseFile(src []byte) ([][]byte, error) {
	var keys [][]byte
	for i, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := Parse(line)
		if err != nil {
			return nil, fmt.Errorf("line %s: %w", strconv.Itoa(i+1), err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key in the file")
	}
	return keys, nil
}
