package config

import (
	"strings"
	"testing"
	"time"
)

// Keys are known set from the decoder, however they are written: bare,
// quoted, or inside an inline table. drain_timeout = "0s" (close at once)
// differs from an absent drain_timeout (the default).
func TestParseForwardKeyPresence(t *testing.T) {
	const backend = "[[pool.backend]]\naddress = \"10.0.0.1:8080\"\n"
	const listener = "[[listener]]\nname = \"web\"\nlisten = \"127.0.0.1:8080\"\npool = \"web\"\n"
	tests := []struct {
		name string
		src  string
		want time.Duration
	}{
		{"absent", "[[pool]]\nname = \"web\"\n" + backend + listener, DefaultDrainTimeout},
		{"bare", "[[pool]]\nname = \"web\"\ndrain_timeout = \"0s\"\n" + backend + listener, 0},
		{"quoted", "[[pool]]\nname = \"web\"\n\"drain_timeout\" = \"0s\"\n" + backend + listener, 0},
		{"literal quoted", "[[pool]]\nname = \"web\"\n'drain_timeout' = \"0s\"\n" + backend + listener, 0},
		{"quoted, set", "[[pool]]\nname = \"web\"\n\"drain_timeout\" = \"5s\"\n" + backend + listener, 5 * time.Second},
		{"inline table", "pool = [{ name = \"web\", drain_timeout = \"0s\", backend = [{ address = \"10.0.0.1:8080\" }] }]\n" + listener, 0},
		{"inline table, quoted", "pool = [{ name = \"web\", \"drain_timeout\" = \"0s\", backend = [{ address = \"10.0.0.1:8080\" }] }]\n" + listener, 0},
		{"inline table, absent", "pool = [{ name = \"web\", backend = [{ address = \"10.0.0.1:8080\" }] }]\n" + listener, DefaultDrainTimeout},
		{"second pool", "[[pool]]\nname = \"web\"\n" + backend + "[[pool]]\nname = \"api\"\n\"drain_timeout\" = \"0s\"\n" + backend + listener, DefaultDrainTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseForward("fwd.toml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Pools[0].DrainTimeout.Duration; got != tt.want {
				t.Errorf("pool[0].drain_timeout = %v, want %v", got, tt.want)
			}
		})
	}
}

// The keys of http listeners are refused on a tcp listener however they
// are written, and named at their line.
func TestParseForwardRefusedKeyPresence(t *testing.T) {
	const pool = "[[pool]]\nname = \"web\"\n[[pool.backend]]\naddress = \"10.0.0.1:8080\"\n"
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"bare", pool + "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:80\"\npool = \"web\"\nmax_header_bytes = 2048\n",
			"fwd.toml:9: listener[0].max_header_bytes: is for http and https listeners, not tcp"},
		{"quoted", pool + "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:80\"\npool = \"web\"\n\"max_header_bytes\" = 2048\n",
			"fwd.toml:9: listener[0].max_header_bytes: is for http and https listeners, not tcp"},
		{"quoted zero duration", pool + "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:80\"\npool = \"web\"\n\"read_header_timeout\" = \"0s\"\n",
			"fwd.toml:9: listener[0].read_header_timeout: is for http and https listeners, not tcp"},
		{"inline table", "listener = [\n  { name = \"l\", listen = \"127.0.0.1:80\", pool = \"web\" },\n  { name = \"m\", listen = \"127.0.0.1:81\", pool = \"web\", tls_min_version = \"1.3\" },\n]\n" + pool,
			"fwd.toml:3: listener[1].tls_min_version: is for http and https listeners, not tcp"},
		{"http listener, quoted", pool + "[[listener]]\nname = \"l\"\nprotocol = \"http\"\nlisten = \"127.0.0.1:80\"\npool = \"web\"\n\"certificate_reload\" = \"1m\"\n",
			"fwd.toml:10: listener[0].certificate_reload: is for https listeners"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseForward("fwd.toml", []byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

// A request body's pace is on by default on http listeners; "0s" turns
// body_timeout off, and negative values are refused by key.
func TestBodyPaceKeys(t *testing.T) {
	const pool = "[[pool]]\nname = \"web\"\n[[pool.backend]]\naddress = \"10.0.0.1:8080\"\n"
	const listener = "[[listener]]\nname = \"web\"\nprotocol = \"http\"\nlisten = \"127.0.0.1:8080\"\npool = \"web\"\n"
	tests := []struct {
		name, keys  string
		wantTimeout time.Duration
		wantRate    int64
		wantErr     string
	}{
		{"defaults", "", DefaultBodyTimeout, DefaultMinBodyRate, ""},
		{"set", "body_timeout = \"5s\"\nmin_body_rate = 100\n", 5 * time.Second, 100, ""},
		{"off", "body_timeout = \"0s\"\nmin_body_rate = 0\n", 0, 0, ""},
		{"negative timeout", "body_timeout = \"-1s\"\n", 0, 0, "listener[0].body_timeout"},
		{"negative rate", "min_body_rate = -1\n", 0, 0, "listener[0].min_body_rate"},
		{"tcp listener", "protocol = \"tcp\"\nbody_timeout = \"5s\"\n", 0, 0, "listener[0].body_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := pool + listener + tt.keys
			if strings.Contains(tt.keys, "protocol") {
				src = pool + strings.Replace(listener, "protocol = \"http\"\n", "", 1) + tt.keys
			}
			f, err := ParseForward("fwd.toml", []byte(src))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l := f.Listeners[0]
			if l.BodyTimeout.Duration != tt.wantTimeout || l.BodyRate() != tt.wantRate {
				t.Errorf("body_timeout %v, min_body_rate %d; want %v, %d", l.BodyTimeout, l.BodyRate(), tt.wantTimeout, tt.wantRate)
			}
		})
	}
}
