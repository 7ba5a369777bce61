#!/usr/bin/env bash
# TLS termination side by side: HAProxy, nginx and Meridian each terminate
# TLS (one ECDSA P-256 certificate, TLS 1.3, keep-alive) and proxy to the
# three nginx backends ../shared/bench/http-compare.sh starts on
# 127.0.0.21-23:18080. Start those first and keep them:
#
#   ../shared/bench/http-compare.sh -k -r 1 -d 1 -w 0
#   make build && examples/forward/bench-tls.sh [-r ROUNDS] [-d SECS]
#   ../shared/bench/http-compare.sh -s
#
# Each proxy runs pinned to CPU 1 and wrk (1 thread, 50 connections) to
# CPU 0, as http-compare.sh does; the table gives requests per second,
# p50/p99 and the proxy's CPU time (user+system) per request, and the
# medians over the interleaved rounds. Everything it starts it stops.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUN=${RUN:-/tmp/kit-http}/tls
SECS=10 ROUNDS=3 CONNS=50
while getopts "d:r:c:" o; do
  case $o in d) SECS=$OPTARG ;; r) ROUNDS=$OPTARG ;; c) CONNS=$OPTARG ;; *) sed -n '2,14p' "$0"; exit 2 ;; esac
done
for b in 127.0.0.21 127.0.0.22 127.0.0.23; do
  curl -fso /dev/null --max-time 1 "http://$b:18080/" ||
    { echo "backend $b:18080 not answering: run ../shared/bench/http-compare.sh -k -r 1 -d 1 -w 0 first" >&2; exit 1; }
done
[[ -x $ROOT/bin/meridian ]] || { echo "no bin/meridian: run make build" >&2; exit 1; }
mkdir -p "$RUN/tmp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=bench.test -addext subjectAltName=DNS:bench.test,IP:127.0.0.31,IP:127.0.0.32,IP:127.0.0.33 \
  -keyout "$RUN/key.pem" -out "$RUN/cert.pem" 2>/dev/null
cat "$RUN/cert.pem" "$RUN/key.pem" > "$RUN/both.pem"

cat > "$RUN/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend https_in
  bind 127.0.0.31:8443 ssl crt $RUN/both.pem
  default_backend be
backend be
  balance roundrobin
  server b1 127.0.0.21:18080
  server b2 127.0.0.22:18080
  server b3 127.0.0.23:18080
EOF
cat > "$RUN/nginx.conf" <<EOF
worker_processes 1;
pid $RUN/nginx.pid;
error_log $RUN/nginx.error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $RUN/tmp; proxy_temp_path $RUN/tmp; fastcgi_temp_path $RUN/tmp;
  uwsgi_temp_path $RUN/tmp; scgi_temp_path $RUN/tmp;
  upstream be { server 127.0.0.21:18080; server 127.0.0.22:18080; server 127.0.0.23:18080; keepalive 64; }
  server {
    listen 127.0.0.32:8443 ssl;
    ssl_certificate $RUN/cert.pem;
    ssl_certificate_key $RUN/key.pem;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
cat > "$RUN/meridian.toml" <<EOF
[log]
level = "warn"
[admin]
listen = "127.0.0.33:8056"
[[pool]]
name = "web"
balance = "round_robin"
[pool.check]
type = "tcp"
interval = "2s"
[[pool.backend]]
address = "127.0.0.21:18080"
[[pool.backend]]
address = "127.0.0.22:18080"
[[pool.backend]]
address = "127.0.0.23:18080"
[[listener]]
name = "tls"
protocol = "https"
listen = "127.0.0.33:8443"
pool = "web"
[[listener.certificate]]
cert_file = "$RUN/cert.pem"
key_file = "$RUN/key.pem"
EOF

PIDS=()
stop() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop EXIT
taskset -c 1 haproxy -db -f "$RUN/haproxy.cfg" >"$RUN/haproxy.log" 2>&1 & PIDS+=($!)
taskset -c 1 nginx -e "$RUN/nginx.error.log" -p "$RUN" -c "$RUN/nginx.conf" -g 'daemon off;' >"$RUN/nginx.log" 2>&1 & PIDS+=($!)
taskset -c 1 "$ROOT/bin/meridian" forward -config "$RUN/meridian.toml" >"$RUN/meridian.log" 2>&1 & PIDS+=($!)
TARGETS=(haproxy-tls=https://127.0.0.31:8443/ nginx-tls=https://127.0.0.32:8443/ meridian-tls=https://127.0.0.33:8443/)
for t in "${TARGETS[@]}"; do
  for _ in $(seq 1 50); do curl -kfso /dev/null --max-time 1 "${t#*=}" && break; sleep 0.2; done
  curl -kfso /dev/null --max-time 1 "${t#*=}" || { echo "not answering: $t" >&2; exit 1; }
  timeout 20 taskset -c 0 wrk -t1 -c"$CONNS" -d2s "${t#*=}" >/dev/null 2>&1 || true # warm-up
done

listen_pids() { ss -Hltnp | awk -v k="$1" '$4==k' | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u; }
ticks() { local s=0 p; for p in "$@"; do s=$((s + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12+$13}'))); done; echo $s; }
HZ=$(getconf CLK_TCK)
printf '%-13s %5s %9s %9s %9s %9s\n' target round rps p50 p99 cpu_us/r
for r in $(seq 1 "$ROUNDS"); do
  for t in "${TARGETS[@]}"; do
    name=${t%%=*} url=${t#*=} hp=${t#*//}; hp=${hp%%/*}
    mapfile -t pids < <(listen_pids "$hp")
    t0=$(ticks "${pids[@]}")
    out=$(timeout $((SECS + 15)) taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$url")
    t1=$(ticks "${pids[@]}")
    n=$(awk '/requests in/{print $1}' <<<"$out")
    printf '%-13s %5s %9s %9s %9s %9s\n' "$name" "$r" "$(awk '/^Requests\/sec/{printf "%.0f", $2}' <<<"$out")" \
      "$(awk '$1=="50%"{print $2}' <<<"$out")" "$(awk '$1=="99%"{print $2}' <<<"$out")" \
      "$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$n" 'BEGIN{printf "%.2f", d / hz * 1e6 / n}')"
  done
done | tee "$RUN/table.txt"
echo "# median cpu_us/r over $ROUNDS rounds"
for t in "${TARGETS[@]}"; do
  n=${t%%=*}
  printf '%-13s %s\n' "$n" "$(awk -v n="$n" '$1==n {print $6}' "$RUN/table.txt" | sort -g |
    awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }')"
done
