#!/usr/bin/env bash
# Meridian side by side with the reference servers in one command (issue 18):
# builds Meridian, starts the reference servers of ../shared/bench, starts
# Meridian pinned like them (DNS on 127.0.0.10:5300 with examples/bench,
# the forwarder on 127.0.0.33 with examples/forward/bench.toml and
# bench-l7.toml), runs the benchmark scripts there with interleaved rounds,
# and prints the medians as a ratio table:
#   L7 and L4 forwarding (wrk, keep-alive, 1 KiB): CPU µs/request and p99,
#     against HAProxy and nginx;
#   DNS (dnsperf): CPU µs/query for a static and a geo+health answer, geo
#     queries/s at saturation, and geo p99 at a fixed 20K queries/s, against
#     gdnsd, NSD and Knot.
# With -p mem, also the memory per 10K idle TCP connections (resident set
# growth, test/perf/idleconns) of each proxy and of Meridian's DNS TCP listener.
# Every process it starts is stopped again on exit. Loopback only.
#
# usage: test/perf/compare.sh [-r ROUNDS] [-l SECS] [-p PARTS] [-m CONNS] [-o OUTDIR]
#   -r ROUNDS  interleaved rounds of each comparison (default 3); medians are printed
#   -l SECS    seconds per dnsperf or wrk run (default 10)
#   -p PARTS   any of dns, http, mem, comma-separated (default dns,http)
#   -m CONNS   idle connections opened per server by -p mem (default 2000: the kit's
#              nginx proxy has 4096 worker connections, two per proxied one)
#   -o OUTDIR  raw output, logs and table.md (default /tmp/meridian-compare.<date>)
# env: BENCH (default <repo>/../shared/bench; install its servers with install.sh first),
#      SERVER_CPUS (servers, default 1), LOAD_CPUS (load generators, default 0), GO (default go)
set -euo pipefail
umask 022 # nginx workers (www-data) read the configs rendered under OUTDIR
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH=${BENCH:-$ROOT/../shared/bench}
ROUNDS=3 SECS=10 PARTS=dns,http MEMCONNS=2000 OUT=''
while getopts "r:l:p:m:o:" o; do
  case $o in
    r) ROUNDS=$OPTARG ;; l) SECS=$OPTARG ;; p) PARTS=$OPTARG ;; m) MEMCONNS=$OPTARG ;; o) OUT=$OPTARG ;;
    *) sed -n '2,25p' "$0"; exit 2 ;;
  esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $SECS =~ ^[1-9][0-9]*$ && $MEMCONNS =~ ^[1-9][0-9]*$ ]] ||
  { echo "-r, -l and -m take positive integers" >&2; exit 2; }
[[ -x $BENCH/dnsperf-compare.sh ]] || { echo "no benchmark kit at $BENCH (set BENCH)" >&2; exit 2; }
for c in dnsperf wrk dig haproxy nginx gdnsd nsd knotd taskset ss curl; do
  command -v "$c" >/dev/null || { echo "$c missing: run $BENCH/install.sh" >&2; exit 2; }
done
export SERVER_CPUS=${SERVER_CPUS-1} LOAD_CPUS=${LOAD_CPUS-0}
SPIN=(); [[ -n $SERVER_CPUS ]] && SPIN=(taskset -c "$SERVER_CPUS")
OUT=${OUT:-/tmp/meridian-compare.$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
chmod 755 "$OUT"
BIN=$OUT/meridian

# Refuse to start over someone else's servers: every address used must be free.
busy=$(ss -Hlntu | awk '{print $5}' |
  grep -E '^127\.0\.0\.(1[0-5]|2[1-3]|3[1-3]):(5300|8053|8080|8081|18080|8054|8055)$|^127\.0\.1\.[12]:18081$' || true)
[[ -z $busy ]] || { echo "in use already (another benchmark running?): $busy" >&2; exit 1; }

PIDS=() DNS_UP=0 HTTP_UP=0
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  PIDS=()
  if [[ $HTTP_UP == 1 ]]; then RUN=$OUT/http-run "$BENCH/http-compare.sh" -s >/dev/null 2>&1 || true; HTTP_UP=0; fi
  if [[ $DNS_UP == 1 ]]; then RUN=$OUT/dns-run "$BENCH/dns-refs-down.sh" >/dev/null 2>&1 || true; DNS_UP=0; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_meridian() { # name args...: Meridian pinned like the reference servers
  local name=$1; shift
  "${SPIN[@]}" "$BIN" "$@" >"$OUT/$name.log" 2>&1 &
  PIDS+=($!)
}
val() { # file name key -> the key=value a benchmark script printed in its median line for name
  awk -v n="$2" -v k="$3" '$1==n { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1]==k) v=a[2] } } END{ print (v=="" ? "-" : v) }' "$1"
}
ROWS=()
row() { # label goal(low|high) meridian name=value...: one line of the ratio table
  ROWS+=("$(awk -v label="$1" -v goal="$2" -v m="$3" -v refs="${*:4}" 'function num(x) { return x ~ /^[0-9]+(\.[0-9]+)?$/ }
    BEGIN {
      n = split(refs, r, " "); list = ""; first = ""; best = ""
      for (i = 1; i <= n; i++) {
        split(r[i], kv, "="); list = list (i > 1 ? ", " : "") kv[1] " " kv[2]
        if (!num(kv[2]) || kv[2] + 0 == 0) continue
        if (first == "") { first = kv[2]; fname = kv[1] }
        if (best == "" || (goal == "low" ? kv[2] + 0 < best + 0 : kv[2] + 0 > best + 0)) { best = kv[2]; bname = kv[1] }
      }
      rf = (num(m) && first != "") ? sprintf("%.2fx", m / first) : "-"
      rb = (num(m) && best != "") ? sprintf("%.2fx (%s)", m / best, bname) : "-"
      printf "| %s | %s | %s | %s | %s | %s |", label, m, list, rf, rb, (goal == "low" ? "<= 1.0" : ">= 1.0")
    }')")
}

echo "# $(date -u '+%Y-%m-%d %H:%M UTC') | $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo devel) | load average at start:$(cut -d' ' -f1-3 /proc/loadavg | sed 's/^/ /')"
echo "# test/perf/compare.sh -r $ROUNDS -l $SECS -p $PARTS | servers on CPU ${SERVER_CPUS:-any}, load on CPU ${LOAD_CPUS:-any} | output in $OUT"
(cd "$ROOT" && "${GO:-go}" build -o "$BIN" ./cmd/meridian)

if [[ ,$PARTS, == *,dns,* ]]; then
  DNS_UP=1
  RUN=$OUT/dns-run "$BENCH/dns-refs-up.sh" >"$OUT/dns-refs-up.log"
  start_meridian meridian-dns serve -config "$ROOT/examples/bench/meridian.toml"
  # bounded wait until both geo answers settle on dc-a's 127.0.1.1 (health checks risen)
  for ip in 127.0.0.10 127.0.0.11; do
    for _ in $(seq 1 100); do
      [[ $(dig +short +time=1 +tries=1 @"$ip" -p 5300 www.gslb.test A) == 127.0.1.1 ]] && break
      sleep 0.2
    done
    [[ $(dig +short +time=1 +tries=1 @"$ip" -p 5300 www.gslb.test A) == 127.0.1.1 ]] ||
      { echo "$ip does not answer www.gslb.test with 127.0.1.1; logs in $OUT" >&2; exit 1; }
  done
  Q=$BENCH/queries
  echo "## DNS, static answer at saturation"
  "$BENCH/dnsperf-compare.sh" -l "$SECS" -r "$ROUNDS" -d "$Q/static.txt" -o "$OUT/dns-static" \
    meridian=127.0.0.10:5300 gdnsd=127.0.0.11:5300 nsd=127.0.0.13:5300 knot=127.0.0.14:5300 | tee "$OUT/dns-static.txt"
  echo "## DNS, geo+health answer at saturation"
  "$BENCH/dnsperf-compare.sh" -l "$SECS" -r "$ROUNDS" -d "$Q/dyn.txt" -o "$OUT/dns-geo" \
    meridian=127.0.0.10:5300 gdnsd=127.0.0.11:5300 | tee "$OUT/dns-geo.txt"
  echo "## DNS, geo+health answer at 20K queries/s"
  "$BENCH/dnsperf-compare.sh" -l "$SECS" -r "$ROUNDS" -d "$Q/dyn.txt" -Q 20000 -o "$OUT/dns-geo20k" \
    meridian=127.0.0.10:5300 gdnsd=127.0.0.11:5300 | tee "$OUT/dns-geo20k.txt"
  cleanup
fi

if [[ ,$PARTS, == *,http,* ]]; then
  HTTP_UP=1
  start_meridian meridian-l4 forward -config "$ROOT/examples/forward/bench.toml"
  start_meridian meridian-l7 forward -config "$ROOT/examples/forward/bench-l7.toml"
  echo "## HTTP keep-alive through each proxy (L7 :8080, L4 :8081)"
  RUN=$OUT/http-run "$BENCH/http-compare.sh" -d "$SECS" -r "$ROUNDS" \
    meridian-l7=http://127.0.0.33:8080/ meridian-l4=http://127.0.0.33:8081/ | tee "$OUT/http.txt"
  cleanup
fi

if [[ ,$PARTS, == *,mem,* ]]; then
  # Memory per 10K idle TCP connections: the stack of http-compare.sh kept up after
  # one short round (-k), Meridian's forwarder and DNS TCP listener beside it.
  (cd "$ROOT" && "${GO:-go}" build -o "$OUT/idleconns" ./test/perf/idleconns)
  HTTP_UP=1 DNS_UP=1
  start_meridian meridian-l4 forward -config "$ROOT/examples/forward/bench.toml"
  start_meridian meridian-l7 forward -config "$ROOT/examples/forward/bench-l7.toml"
  # the DNS listener with its TCP limits raised above the connections opened
  mkdir -p "$OUT/dns-mem"
  cp "$ROOT/examples/bench/gslb.test.zone" "$OUT/dns-mem/"
  sed "s/^\[server\]$/[server]\ntcp_max_connections = 20000\ntcp_max_per_client = 20000\ntcp_max_per_prefix = 20000/" \
    "$ROOT/examples/bench/meridian.toml" >"$OUT/dns-mem/meridian.toml"
  RUN=$OUT/dns-run "$BENCH/dns-refs-up.sh" >"$OUT/dns-refs-up.log"
  start_meridian meridian-dns serve -config "$OUT/dns-mem/meridian.toml"
  RUN=$OUT/http-run "$BENCH/http-compare.sh" -k -d 1 -r 1 -w 0 \
    meridian-l7=http://127.0.0.33:8080/ meridian-l4=http://127.0.0.33:8081/ >"$OUT/mem-stack.txt"
  echo "## Memory per 10K idle TCP connections ($MEMCONNS opened, RSS growth of the listening processes)"
  for t in haproxy-l7=127.0.0.31:8080 nginx-l7=127.0.0.32:8080 meridian-l7=127.0.0.33:8080 \
    haproxy-l4=127.0.0.31:8081 nginx-l4=127.0.0.32:8081 meridian-l4=127.0.0.33:8081 meridian-dns-tcp=127.0.0.10:5300; do
    pids=$(ss -Hltnp | awk -v k="${t#*=}" '$4==k' | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | paste -sd,)
    [[ -n $pids ]] || { echo "${t%%=*}: not listening"; continue; }
    printf '%-17s %s\n' "${t%%=*}" "$(timeout 120 "$OUT/idleconns" -addr "${t#*=}" -pids "$pids" -n "$MEMCONNS")" | tee -a "$OUT/mem.txt"
    sleep 1
  done
  cleanup
fi

if [[ -f $OUT/http.txt ]]; then
  H=$OUT/http.txt
  row "L7 keep-alive 1 KiB, CPU µs/request" low "$(val "$H" meridian-l7 cpu_us/r)" \
    "HAProxy=$(val "$H" haproxy-l7 cpu_us/r)" "nginx=$(val "$H" nginx-l7 cpu_us/r)"
  row "L7 p99, ms" low "$(val "$H" meridian-l7 p99_ms)" \
    "HAProxy=$(val "$H" haproxy-l7 p99_ms)" "nginx=$(val "$H" nginx-l7 p99_ms)"
  row "L4 (TCP), CPU µs/request" low "$(val "$H" meridian-l4 cpu_us/r)" \
    "HAProxy=$(val "$H" haproxy-l4 cpu_us/r)" "nginx=$(val "$H" nginx-l4 cpu_us/r)"
  row "L4 p99, ms" low "$(val "$H" meridian-l4 p99_ms)" \
    "HAProxy=$(val "$H" haproxy-l4 p99_ms)" "nginx=$(val "$H" nginx-l4 p99_ms)"
fi
if [[ -f $OUT/dns-static.txt ]]; then
  S=$OUT/dns-static.txt G=$OUT/dns-geo.txt F=$OUT/dns-geo20k.txt
  row "DNS geo+health answer, CPU µs/query" low "$(val "$G" meridian cpu_us/q)" "gdnsd=$(val "$G" gdnsd cpu_us/q)"
  row "DNS static answer, CPU µs/query" low "$(val "$S" meridian cpu_us/q)" \
    "gdnsd=$(val "$S" gdnsd cpu_us/q)" "NSD=$(val "$S" nsd cpu_us/q)" "Knot=$(val "$S" knot cpu_us/q)"
  row "DNS queries/s at saturation (geo)" high "$(val "$G" meridian qps)" "gdnsd=$(val "$G" gdnsd qps)"
  row "DNS p99 at a fixed 20K queries/s (geo), ms" low "$(val "$F" meridian p99_ms)" "gdnsd=$(val "$F" gdnsd p99_ms)"
fi
{
  echo
  echo "Medians of $ROUNDS interleaved rounds, $(date -u '+%Y-%m-%d'), load average at the end:$(cut -d' ' -f1-3 /proc/loadavg | sed 's/^/ /')"
  if ((${#ROWS[@]})); then
    echo
    echo "| work | Meridian | reference | ratio to the first | ratio to the best | goal |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
  fi
  if [[ -f $OUT/mem.txt ]]; then
    echo; echo "Memory per 10K idle TCP connections ($MEMCONNS opened):"; echo; sed 's/^/    /' "$OUT/mem.txt"
  fi
} | tee "$OUT/table.md"
