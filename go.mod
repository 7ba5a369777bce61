module github.com/meridian-gslb/meridian

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/miekg/dns v1.1.73
	golang.org/x/sys v0.50.0
)

require golang.org/x/net v0.57.0 // indirect
