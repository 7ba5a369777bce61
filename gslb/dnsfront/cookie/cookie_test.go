package cookie

import (
	"encoding/hex"
	"net/netip"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRFC9018Vectors reproduces RFC 9018 Appendix A's server cookies, and
// checks each as the next query would bring it back.
func TestRFC9018Vectors(t *testing.T) {
	for _, tt := range []struct {
		name, secret, client, ip string
		at                       uint32
		want                     string
	}{
		{"A.1 learning a new server cookie", "e5e973e5a6b2a43f48e7dc849e37bfcf", "2464c4abcf10c957", "198.51.100.100", 1559731985, "010000005cf79f111f8130c3eee29480"},
		{"A.2 the same client renewing it", "e5e973e5a6b2a43f48e7dc849e37bfcf", "2464c4abcf10c957", "198.51.100.100", 1559734385, "010000005cf7a871d4a564a1442aca77"},
		{"A.3 another client renewing it", "e5e973e5a6b2a43f48e7dc849e37bfcf", "fc93fc62807ddb86", "203.0.113.203", 1559734700, "010000005cf7a9acf73a7810aca2381e"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j, err := New([][]byte{unhex(t, tt.secret)})
			if err != nil {
				t.Fatal(err)
			}
			var got [ServerLen]byte
			addr := netip.MustParseAddr(tt.ip)
			j.Make(&got, unhex(t, tt.client), addr, tt.at)
			if hex.EncodeToString(got[:]) != tt.want {
				t.Fatalf("server cookie %x, want %s", got, tt.want)
			}
			if !j.Check(unhex(t, tt.client), got[:], addr, tt.at+60) {
				t.Error("our own cookie, a minute later, is not valid")
			}
		})
	}
}

func TestCheck(t *testing.T) {
	old, cur := unhex(t, "445536bcd2513298075a5d379663c962"), unhex(t, "e5e973e5a6b2a43f48e7dc849e37bfcf")
	before, _ := New([][]byte{old})
	after, _ := New([][]byte{cur, old}) // rolled over: the old one still accepted
	other, _ := New([][]byte{unhex(t, "00112233445566778899aabbccddeeff")})
	client := unhex(t, "2464c4abcf10c957")
	addr := netip.MustParseAddr("198.51.100.100")
	const now = 1559731985
	var made [ServerLen]byte
	before.Make(&made, client, addr, now)
	for _, tt := range []struct {
		name   string
		jar    *Jar
		client []byte
		addr   string
		at     uint32
		want   bool
	}{
		{"valid", before, client, "198.51.100.100", now + 10, true},
		{"made with the previous secret, after a rollover", after, client, "198.51.100.100", now + 10, true},
		{"another cluster's secret", other, client, "198.51.100.100", now + 10, false},
		{"another client address", before, client, "198.51.100.101", now + 10, false},
		{"IPv4-mapped, the same address", before, client, "::ffff:198.51.100.100", now + 10, true},
		{"another client cookie", before, unhex(t, "2464c4abcf10c958"), "198.51.100.100", now + 10, false},
		{"older than an hour", before, client, "198.51.100.100", now + 3601, false},
		{"from five minutes ahead", before, client, "198.51.100.100", now - 300, true},
		{"from further ahead", before, client, "198.51.100.100", now - 301, false},
	} {
		if got := tt.jar.Check(tt.client, made[:], netip.MustParseAddr(tt.addr), tt.at); got != tt.want {
			t.Errorf("%s: Check = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseSecrets(t *testing.T) {
	got, err := ParseSecrets("# rolled 2026-12-04\ne5e973e5a6b2a43f48e7dc849e37bfcf\n\n445536bcd2513298075a5d379663c962\n")
	if err != nil || len(got) != 2 {
		t.Fatalf("ParseSecrets: %d secrets, %v", len(got), err)
	}
	for _, bad := range []string{"", "# none\n", "e5e973", "zz5e973e5a6b2a43f48e7dc849e37bfcf"} {
		if _, err := ParseSecrets(bad); err == nil {
			t.Errorf("ParseSecrets(%q) accepted", bad)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	j := Random()
	client := []byte("12345678")
	addr := netip.MustParseAddr("198.51.100.100")
	var c [ServerLen]byte
	j.Make(&c, client, addr, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if !j.Check(client, c[:], addr, 1001) {
			b.Fatal("invalid")
		}
		j.Make(&c, client, addr, 1001)
	}
}
