module github.com/meridian-gslb/meridian

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/miekg/dns v1.1.73
	golang.org/x/sys v0.50.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/gaissmai/bart v0.30.0 // indirect
	github.com/maxmind/mmdbwriter v1.2.0 // indirect
	github.com/oschwald/geoip2-golang/v2 v2.5.0 // indirect
	github.com/oschwald/maxminddb-golang/v2 v2.9.0 // indirect
	go4.org/netipx v0.0.0-20231129151722-fdeea329fbba // indirect
	golang.org/x/net v0.57.0 // indirect
)
