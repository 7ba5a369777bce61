package xfr

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/miekg/dns"
)

// Key is one TSIG key.
type Key struct {
	Name      string // lower-case FQDN, as on the wire
	Algorithm string // dns.HmacSHA256 and the like, fully qualified
	Secret    string // base64, as miekg/dns takes it
}

// algorithms are the HMACs accepted; the older ones (MD5, SHA-1) are not.
var algorithms = map[string]string{
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// ErrKeyFile is wrapped by every error ParseKeys returns.
var ErrKeyFile = errors.New("bad TSIG key file")

// ParseKeys reads key statements as BIND's tsig-keygen writes them:
//
//	key "name" {
//		algorithm hmac-sha256;
//		secret "base64";
//	};
//
// Several may follow one another; comments (#, //, /* */) are skipped.
// Errors name the line.
func ParseKeys(text string) ([]Key, error) {
	toks, err := tokenize(text)
	if err != nil {
		return nil, err
	}
	var keys []Key
	for i := 0; i < len(toks); {
		k, next, err := parseKey(toks, i)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
		i = next
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key statement", ErrKeyFile)
	}
	return keys, nil
}

type token struct {
	text   string
	quoted bool
	line   int
}

// parseKey reads one key statement from toks[i:] and returns where the
// next one starts.
func parseKey(toks []token, i int) (Key, int, error) {
	want := func(text string) error {
		if i >= len(toks) {
			return fmt.Errorf("%w: unexpected end, want %q", ErrKeyFile, text)
		}
		if t := toks[i]; t.quoted || t.text != text {
			return fmt.Errorf("%w: line %d: want %q, got %q", ErrKeyFile, t.line, text, t.text)
		}
		i++
		return nil
	}
	if err := want("key"); err != nil {
		return Key{}, 0, err
	}
	if i >= len(toks) || isPunct(toks[i]) {
		return Key{}, 0, fmt.Errorf("%w: a key needs a name", ErrKeyFile)
	}
	line := toks[i].line
	k := Key{Name: KeyName(toks[i].text)}
	if _, ok := dns.IsDomainName(k.Name); !ok {
		return Key{}, 0, fmt.Errorf("%w: line %d: %q is not a key name", ErrKeyFile, line, toks[i].text)
	}
	i++
	if err := want("{"); err != nil {
		return Key{}, 0, err
	}
	for i < len(toks) && toks[i].text != "}" {
		if i+2 >= len(toks) || toks[i+2].text != ";" {
			return Key{}, 0, fmt.Errorf("%w: line %d: want \"name value;\"", ErrKeyFile, toks[i].line)
		}
		if err := k.set(toks[i], toks[i+1]); err != nil {
			return Key{}, 0, err
		}
		i += 3
	}
	if err := want("}"); err != nil {
		return Key{}, 0, err
	}
	if err := want(";"); err != nil {
		return Key{}, 0, err
	}
	if k.Algorithm == "" || k.Secret == "" {
		return Key{}, 0, fmt.Errorf("%w: line %d: key %q needs an algorithm and a secret", ErrKeyFile, line, k.Name)
	}
	return k, i, nil
}

// set takes one "name value;" clause of a key statement.
func (k *Key) set(name, value token) error {
	switch name.text {
	case "algorithm":
		alg, ok := algorithms[strings.ToLower(value.text)]
		if !ok {
			return fmt.Errorf("%w: line %d: algorithm %q: want hmac-sha256, hmac-sha384 or hmac-sha512", ErrKeyFile, value.line, value.text)
		}
		k.Algorithm = alg
	case "secret":
		raw, err := base64.StdEncoding.DecodeString(value.text)
		if err != nil || len(raw) < 16 {
			return fmt.Errorf("%w: line %d: the secret must be base64 of at least 16 bytes", ErrKeyFile, value.line)
		}
		k.Secret = value.text
	default:
		return fmt.Errorf("%w: line %d: unknown clause %q", ErrKeyFile, name.line, name.text)
	}
	return nil
}

func isPunct(t token) bool {
	return !t.quoted && (t.text == "{" || t.text == "}" || t.text == ";")
}

// tokenize splits text into words, quoted strings and the punctuation
// { } ;, skipping comments.
func tokenize(text string) ([]token, error) {
	var toks []token
	line := 1
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\n':
			line++
			i++
		case unicode.IsSpace(rune(c)):
			i++
		case c == '#' || strings.HasPrefix(text[i:], "//"):
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case strings.HasPrefix(text[i:], "/*"):
			end := strings.Index(text[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("%w: line %d: unterminated comment", ErrKeyFile, line)
			}
			line += strings.Count(text[i:i+2+end], "\n")
			i += end + 4
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, token{text: string(c), line: line})
			i++
		case c == '"':
			end := strings.IndexByte(text[i+1:], '"')
			if end < 0 || strings.Contains(text[i+1:i+1+end], "\n") {
				return nil, fmt.Errorf("%w: line %d: unterminated string", ErrKeyFile, line)
			}
			toks = append(toks, token{text: text[i+1 : i+1+end], quoted: true, line: line})
			i += end + 2
		default:
			j := i
			for j < len(text) && !unicode.IsSpace(rune(text[j])) && !strings.ContainsRune("{};\"", rune(text[j])) {
				j++
			}
			toks = append(toks, token{text: text[i:j], line: line})
			i = j
		}
	}
	return toks, nil
}
