package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// cityDB writes a GeoIP2 City database with MaxMind's writer: each network
// gets a country, a continent and coordinates.
func cityDB(t *testing.T, path string, nets map[string][3]any) {
	t.Helper()
	recs := map[string]mmdbtype.Map{}
	for cidr, v := range nets {
		coords := v[2].([2]float64)
		recs[cidr] = mmdbtype.Map{
			"country":   mmdbtype.Map{"iso_code": mmdbtype.String(v[0].(string))},
			"continent": mmdbtype.Map{"code": mmdbtype.String(v[1].(string))},
			"location":  mmdbtype.Map{"latitude": mmdbtype.Float64(coords[0]), "longitude": mmdbtype.Float64(coords[1])},
		}
	}
	hazardDB(t, path, "GeoIP2-City", recs)
}

// TestGeoIPProximity serves app.example.test by proximity from a GeoIP2
// City database and replaces the database while serving.
func TestGeoIPProximity(t *testing.T) {
	paris, tokyo, boston := [2]float64{48.86, 2.35}, [2]float64{35.68, 139.69}, [2]float64{42.36, -71.06}
	var dbPath string
	s := startQuickstartWith(t, func(config string) string {
		static, _, ok := strings.Cut(config, "# --- GSLB")
		if !ok {
			t.Fatal("the quickstart has no GSLB part to replace")
		}
		// The database lives beside the config, written by the prepare
		// function below before the server starts.
		return static + `
[geo]
reload_interval = "1s"

[[geo.database]]
path = "city.mmdb"
format = "maxmind"

[[region]]
name = "us-east"
lat = 38.94
lon = -77.45

[[region]]
name = "eu-west"
lat = 53.35
lon = -6.26

[[region]]
name = "ap-northeast"
lat = 35.68
lon = 139.69

[[record]]
name = "app.example.test"
policy = "proximity"
[[record.pool]]
region = "us-east"
check = { type = "none" }
[[record.pool.target]]
address = "192.0.2.100"
[[record.pool]]
region = "eu-west"
check = { type = "none" }
[[record.pool.target]]
address = "198.51.100.100"
[[record.pool]]
region = "ap-northeast"
check = { type = "none" }
[[record.pool.target]]
address = "203.0.113.100"
`
	}, func(dir string) {
		dbPath = filepath.Join(dir, "city.mmdb")
		cityDB(t, dbPath, map[string][3]any{
			"198.51.100.0/24": {"FR", "EU", paris},
			"203.0.113.0/24":  {"JP", "AS", tokyo},
			"192.0.2.0/24":    {"US", "NA", boston},
		})
	})
	// The scope is the widest prefix whose clients all get the same
	// order. Boston's (us-east, eu-west, ap-northeast) is also the
	// configured order that clients the database does not know get, so
	// it holds for 192.0.0.0/6, which holds no other network.
	for _, tt := range []struct{ subnet, want, echo string }{
		{"198.51.100.7/24", "198.51.100.100", "198.51.100.0/24/24"},
		{"203.0.113.9/24", "203.0.113.100", "203.0.113.0/24/24"},
		{"192.0.2.7/24", "192.0.2.100", "192.0.2.0/24/6"},
	} {
		r := s.dig(t, "app.example.test", "A", "+norec", "+subnet="+tt.subnet)
		if got := r.sections["ANSWER"]; len(got) != 1 || !strings.HasSuffix(got[0], " "+tt.want) {
			t.Errorf("client %s: answer %v, want %s\n%s", tt.subnet, got, tt.want, r.out)
		}
		if !strings.Contains(r.out, "CLIENT-SUBNET: "+tt.echo+"\n") {
			t.Errorf("client %s: CLIENT-SUBNET is not %s:\n%s", tt.subnet, tt.echo, r.out)
		}
	}

	// Paris's network moves to Tokyo in a new database: within the reload
	// interval its clients go to ap-northeast.
	cityDB(t, dbPath, map[string][3]any{
		"198.51.100.0/24": {"JP", "AS", tokyo},
		"203.0.113.0/24":  {"JP", "AS", tokyo},
		"192.0.2.0/24":    {"US", "NA", boston},
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := s.dig(t, "app.example.test", "A", "+norec", "+subnet=198.51.100.7/24")
		if got := r.sections["ANSWER"]; len(got) == 1 && strings.HasSuffix(got[0], " 203.0.113.100") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replaced database was not picked up:\n%s\nlog:\n%s", r.out, s.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
