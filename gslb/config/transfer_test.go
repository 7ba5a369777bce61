package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meridian-gslb/meridian/gslb/dnsfront/xfr"
	"github.com/miekg/dns"
)

const (
	ns2Key = "key \"ns2-example\" {\n\talgorithm hmac-sha256;\n\tsecret \"0rTUrMjf1oODdN0OSuA5CzqTmoGMzF5XF/G3mCOfSZE=\";\n};\n"
	// transferConfig has a key file and a transferred zone; %s is
	// replaced by lines of its [zone.transfer] table (line 9 on).
	transferConfig = `[transfer]
key_files = ["ns2.key"]

[[zone]]
name = "example.test"
records = ["@ IN A 192.0.2.1"]
serial = "increment"
[zone.transfer]
%s
`
)

// loadTransfer writes transferConfig with body and ns2.key holding key
// (none when empty), and loads it.
func loadTransfer(t *testing.T, body, key string) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	if key != "" {
		if err := os.WriteFile(filepath.Join(dir, "ns2.key"), []byte(key), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "meridian.toml")
	src := strings.Replace(transferConfig, "%s", body, 1)
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(path)
}

func TestTransferConfig(t *testing.T) {
	cfg, err := loadTransfer(t, `allow = [{ key = "ns2-example" }, { prefix = "192.0.2.53/32" }]
notify = ["192.0.2.53:53"]
notify_key = "ns2-example"`, ns2Key)
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Transfer.Keys["ns2-example."]
	if k.Algorithm != dns.HmacSHA256 || k.Secret == "" || cfg.Transfer.History != xfr.DefaultHistory {
		t.Errorf("keys %v, history %d", cfg.Transfer.Keys, cfg.Transfer.History)
	}
	if p := cfg.TransferPlans()["example.test."]; p != (xfr.ZonePlan{Serial: xfr.SerialIncrement, Transfer: true}) {
		t.Errorf("plan %+v", p)
	}
	if c := cfg.TransferConfigs()["example.test."]; len(c.Allow) != 2 || c.NotifyKey != "ns2-example" {
		t.Errorf("config %+v", c)
	}
}

func TestTransferConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name, body, key string
		want            []string // in the error, in this order
	}{
		{"no key file", `allow = [{ key = "ns2-example" }]`, "",
			[]string{"meridian.toml:2: transfer.key_files[0]: ns2.key: ", "no such file", `:9: zone[0].transfer.allow[0].key: no key "ns2-example"`}},
		{"bad key file", `allow = [{ prefix = "127.0.0.0/8" }]`, strings.Replace(ns2Key, "hmac-sha256", "hmac-md5", 1),
			[]string{"meridian.toml:2: transfer.key_files[0]: ns2.key: bad TSIG key file: line 2"}},
		{"a key twice", `allow = [{ prefix = "127.0.0.0/8" }]`, ns2Key + ns2Key,
			[]string{`transfer.key_files[0]: ns2.key: key "ns2-example." is defined twice`}},
		{"unknown key, bad prefix, bad notify", `allow = [{ key = "ns3" }, { prefix = "10.0.0.1" }]
notify = ["ns2.example.test:53"]
notify_key = "ns3"`, ns2Key,
			[]string{":9: zone[0].transfer.allow[0].key: no key \"ns3\"", ":9: zone[0].transfer.allow[1].prefix", ":10: zone[0].transfer.notify[0]", ":11: zone[0].transfer.notify_key"}},
		{"a rule allowing anyone", `allow = [{ }]`, ns2Key, []string{"zone[0].transfer.allow[0]: give a prefix, a key or both"}},
		{"unknown key in a rule", `allow = [{ keys = "ns2-example" }]`, ns2Key, []string{"zone[0].transfer.allow[0].keys: unknown key"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadTransfer(t, tt.body, tt.key)
			if err == nil {
				t.Fatal("no error")
			}
			msg, at := err.Error(), 0
			for _, w := range tt.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("error does not contain %q after offset %d:\n%v", w, at, err)
				}
				at += i
			}
		})
	}
	for serial, ok := range map[string]bool{"file": true, "unixtime": true, "increment": true, "weekly": false} {
		src := "[[zone]]\nname = \"example.test\"\nrecords = [\"@ IN A 192.0.2.1\"]\nserial = \"" + serial + "\"\n"
		_, err := Parse("file.toml", []byte(src))
		if (err == nil) != ok || (!ok && !strings.Contains(err.Error(), "file.toml:4: zone[0].serial:")) {
			t.Errorf("serial %q: %v", serial, err)
		}
	}
	if _, err := Parse("file.toml", []byte("[transfer]\nhistory = -1\n"+zoneTable)); err == nil || !strings.Contains(err.Error(), "file.toml:2: transfer.history:") {
		t.Errorf("history -1: %v", err)
	}
}

// TestTransferWarnings: a transferred zone with dynamic records is warned
// of (meridian check prints it), one without transfers is not.
func TestTransferWarnings(t *testing.T) {
	src := strings.Replace(poolCheck(`{ type = "none" }`), `records = ["@ IN A 192.0.2.1"]`,
		"records = [\"@ IN A 192.0.2.1\"]\n[zone.transfer]\nallow = [{ prefix = \"127.0.0.0/8\" }]", 1)
	for _, tt := range []struct {
		src  string
		want string
	}{
		{src, `file.toml:4: zone[0].transfer: zone example.test is transferred but holds dynamic records (app.example.test)`},
		{poolCheck(`{ type = "none" }`), ""},
	} {
		cfg, err := Parse("file.toml", []byte(tt.src))
		if err != nil {
			t.Fatal(err)
		}
		g, err := cfg.BuildGSLB()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, w := range cfg.TransferWarnings(g) {
			got = append(got, w.Error())
		}
		if tt.want == "" && len(got) > 0 || tt.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tt.want)) {
			t.Errorf("warnings %q, want %q", got, tt.want)
		}
	}
}
