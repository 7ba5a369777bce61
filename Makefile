# Meridian: `make run` serves the quickstart, `make test` runs every test.
GO      ?= go
BIN     := bin/meridian
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.buildVersion=$(VERSION)
# Fuzzing in `make test` is brief and bounded by a count of inputs, not a
# duration: Go 1.26's fuzz coordinator can fail a target with "context
# deadline exceeded" when a -fuzztime duration ends (golang/go#75804, fixed
# in Go 1.27), a flake a count cannot hit. make fuzz-long runs 10 minutes
# of each, where a rare flake costs nothing.
FUZZTIME ?= 200000x
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run test test-short fuzz fuzz-long bench bench-go bench-forward bench-dnsperf bench-compare lint clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/meridian

# The admin token that lets the console's drains work on the quickstart:
# made once, random, readable by you alone, and never in the repository.
TOKEN_FILE := bin/admin.token

run: build $(TOKEN_FILE)
	@echo "console: http://127.0.0.1:8053/ (admin token in $(TOKEN_FILE))"
	./$(BIN) serve -config examples/quickstart/meridian.toml -admin-token-file $(TOKEN_FILE)

$(TOKEN_FILE):
	@mkdir -p bin
	@umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > $@ && echo >> $@
	@chmod 600 $@

test: lint
	$(GO) test -race -count=1 -timeout 10m ./...
	$(MAKE) fuzz

# Every fuzz target, as package:Name. Each runs for FUZZTIME.
FUZZ_TARGETS := \
	./gslb/dnsfront:FuzzServeDNS \
	./gslb/forward/h1:FuzzH1Request \
	./gslb/forward/h1:FuzzH1Response \
	./gslb/config:FuzzParse \
	./zones:FuzzZone \
	./gslb/cluster:FuzzDecode \
	./gslb/forward/sni:FuzzRead \
	./gslb/forward/ratelimit:FuzzJWTClaim \
	./gslb/forward:FuzzProxyHeader \
	./internal/adminhttp:FuzzDecodeStrict \
	./gslb/dnsfront/xfr:FuzzTransferRequest

# The quick local tier: lint and every test but the end-to-end ones, without
# the race detector; make test before you push.
test-short: lint
	$(GO) test -short -count=1 ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

# The same, for 10 minutes each.
fuzz-long: FUZZTIME = 10m
fuzz-long: fuzz

bench: bench-go bench-forward bench-dnsperf

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./gslb/dnsfront ./zones

# The forwarder's balancers and a proxied TCP round trip.
bench-forward:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./gslb/forward

# dnsperf against the quickstart for a fixed time, when dnsperf is installed.
bench-dnsperf: build
	@if ! command -v dnsperf >/dev/null; then echo "dnsperf not installed (apt-get install dnsperf): skipping"; exit 0; fi; \
	./$(BIN) serve -config examples/quickstart/meridian.toml 2>/dev/null & pid=$$!; \
	trap "kill $$pid" EXIT; sleep 1; \
	printf 'www.example.test A\nnope.example.test A\nx.child.example.test A\nexample.test MX\n' > $(BIN).queries; \
	dnsperf -s 127.0.0.1 -p 1053 -d $(BIN).queries -l 10 -c 4 -Q 200000 | sed -n '/Statistics/,$$p'

# Meridian side by side with HAProxy, nginx, gdnsd, NSD and Knot (issue 18),
# medians of 3 interleaved rounds and the ratio table; ../shared/bench/install.sh
# first. About 10 minutes; not part of make test.
bench-compare:
	test/perf/compare.sh -r 3

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean:
	rm -rf bin
