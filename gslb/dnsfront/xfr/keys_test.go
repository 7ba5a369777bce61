package xfr

import (
	"errors"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// tsigKeygen is what BIND 9.18's `tsig-keygen -a hmac-sha256 ns2-example` prints.
const tsigKeygen = `key "ns2-example" {
	algorithm hmac-sha256;
	secret "0rTUrMjf1oODdN0OSuA5CzqTmoGMzF5XF/G3mCOfSZE=";
};
`

func TestParseKeys(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		want       []Key
		err        string // in the error; "" for none
	}{
		{name: "tsig-keygen", text: tsigKeygen, want: []Key{
			{Name: "ns2-example.", Algorithm: dns.HmacSHA256, Secret: "0rTUrMjf1oODdN0OSuA5CzqTmoGMzF5XF/G3mCOfSZE="}}},
		{name: "two keys, comments, one line, mixed case",
			text: "# ours\nkey \"A.Example\" { algorithm HMAC-SHA512; secret \"MDEyMzQ1Njc4OWFiY2RlZg==\"; };\n// theirs\n/* a\nblock */ key b { secret \"MDEyMzQ1Njc4OWFiY2RlZg==\"; algorithm hmac-sha384; };",
			want: []Key{
				{Name: "a.example.", Algorithm: dns.HmacSHA512, Secret: "MDEyMzQ1Njc4OWFiY2RlZg=="},
				{Name: "b.", Algorithm: dns.HmacSHA384, Secret: "MDEyMzQ1Njc4OWFiY2RlZg=="}}},
		{name: "md5 is not taken", text: strings.Replace(tsigKeygen, "hmac-sha256", "hmac-md5", 1), err: `line 2: algorithm "hmac-md5"`},
		{name: "secret not base64", text: strings.Replace(tsigKeygen, "0rTU", "!!!!", 1), err: "line 3: the secret must be base64"},
		{name: "secret too short", text: strings.Replace(tsigKeygen, "0rTUrMjf1oODdN0OSuA5CzqTmoGMzF5XF/G3mCOfSZE=", "c2hvcnQ=", 1), err: "at least 16 bytes"},
		{name: "no secret", text: "key x { algorithm hmac-sha256; };", err: `key "x." needs an algorithm and a secret`},
		{name: "unknown clause", text: "key x { algorithm hmac-sha256; owner y; };", err: `unknown clause "owner"`},
		{name: "no final semicolon", text: strings.TrimSuffix(tsigKeygen, ";\n"), err: `unexpected end, want ";"`},
		{name: "unterminated string", text: "key \"x { };", err: "line 1: unterminated string"},
		{name: "unterminated comment", text: "/* key", err: "unterminated comment"},
		{name: "empty", text: "# nothing\n", err: "no key statement"},
		{name: "not a key", text: "options { };", err: `want "key", got "options"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeys(tt.text)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrKeyFile) {
					t.Fatalf("ParseKeys: %v, want an ErrKeyFile containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("key %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	keys := map[string]Key{"ns2.": {Name: "ns2."}}
	for _, tt := range []struct {
		name string
		cfg  Config
		want []string // keys of the problems
	}{
		{name: "good", cfg: Config{Allow: []Rule{{Key: "ns2"}, {Prefix: "192.0.2.0/24"}, {Prefix: "2001:db8::/32", Key: "NS2."}},
			Notify: []string{"192.0.2.53:53", "[2001:db8::53]:5300"}, NotifyKey: "ns2"}},
		{name: "empty rule", cfg: Config{Allow: []Rule{{}}}, want: []string{"allow[0]"}},
		{name: "bad prefix", cfg: Config{Allow: []Rule{{Prefix: "192.0.2.1"}}}, want: []string{"allow[0].prefix"}},
		{name: "unknown key", cfg: Config{Allow: []Rule{{Key: "ns3"}}, NotifyKey: "ns3"}, want: []string{"allow[0].key", "notify_key"}},
		{name: "notify not ip:port", cfg: Config{Notify: []string{"ns2.example.test:53", "192.0.2.53"}}, want: []string{"notify[0]", "notify[1]"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range tt.cfg.Validate(keys) {
				got = append(got, p.Key)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("problems at %v, want %v", got, tt.want)
			}
		})
	}
	if err := ValidSerial("yearly"); err == nil {
		t.Error(`serial "yearly" accepted`)
	}
	s := Settings{}
	s.SetDefaults()
	if s.History != DefaultHistory || len(s.Validate()) != 0 {
		t.Errorf("defaults %+v: %v", s, s.Validate())
	}
	if s.History = 1001; len(s.Validate()) != 1 {
		t.Error("history 1001 accepted")
	}
}
