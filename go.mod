module github.com/meridian-gslb/meridian

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/cespare/xxhash/v2 v2.3.0
	github.com/gaissmai/bart v0.30.0
	github.com/maxmind/mmdbwriter v1.2.0
	github.com/miekg/dns v1.1.73
	github.com/oschwald/geoip2-golang/v2 v2.5.0
	github.com/oschwald/maxminddb-golang/v2 v2.9.0
	golang.org/x/net v0.57.0
	golang.org/x/sys v0.50.0
)

require go4.org/netipx v0.0.0-20231129151722-fdeea329fbba // indirect
