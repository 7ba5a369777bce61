package loopback

import "testing"

func TestBeyond(t *testing.T) {
	tests := []struct {
		addrs []string
		want  string
	}{
		{nil, ""},
		{[]string{"127.0.0.1:7946", "", "[::1]:7946", "localhost:7946"}, ""},
		{[]string{"127.0.0.1:7946", "192.0.2.1:7946"}, "192.0.2.1:7946"},
		{[]string{"0.0.0.0:7946"}, "0.0.0.0:7946"}, // every address, not only loopback
		{[]string{"node1.example.test:7946"}, "node1.example.test:7946"},
		{[]string{"10.0.0.1"}, "10.0.0.1"}, // no port: the host alone
	}
	for _, tt := range tests {
		if got := Beyond(tt.addrs...); got != tt.want {
			t.Errorf("Beyond(%q) = %q, want %q", tt.addrs, got, tt.want)
		}
	}
}
