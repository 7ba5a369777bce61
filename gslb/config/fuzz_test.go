package config

import (
	"testing"
)

// FuzzParse feeds configuration files to the loader: a bad file must be an
// error naming where it is wrong, never a crash (a crash here would take a
// reload down with it).
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		zoneTable,
		"[server]\nlisten = [\"127.0.0.1:53\"]\n[server.rrl]\nenabled = true\nrate = 5\nexempt = [\"10.0.0.0/8\"]\n" + zoneTable,
		"[[region]]\nname = \"a\"\nlat = 1\nlon = 2\n[[record]]\nname = \"app.example.test\"\npolicy = \"geo\"\n[record.geo]\ndefault = [\"a\"]\n[[record.pool]]\nregion = \"a\"\ncheck = { type = \"none\" }\n[[record.pool.target]]\naddress = \"192.0.2.1\"\n" + zoneTable,
		"[[geo.network]]\nprefix = \"10.0.0.0/8\"\nregion = \"x\"\n" + zoneTable,
		"\"server\".\"listen\" = [\"x\"]\n[cluster]\nname = \"c\"\nseeds = [\"1\"]\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := Parse("fuzz.toml", []byte(src))
		if err != nil {
			return
		}
		if _, err := cfg.BuildGSLB(); err != nil {
			return
		}
	})
}
