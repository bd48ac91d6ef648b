#!/usr/bin/env bash
# Soak run: a long open-loop run against `inferload serve` on 127.0.0.1, sampling the resident
# set (VmRSS from /proc/PID/status) of the generator and of the target every few seconds, to
# show that memory stays flat over time. Not part of CI.
#
# Usage: benches/soak.sh [RATE] [DURATION] [SAMPLE_SECONDS]
#   defaults: 5000/s, 10m, 5
# Writes OUT/summary.json (the run's results), OUT/rss.csv (elapsed_s, client_rss_kib,
# server_rss_kib) and OUT/run.log, with OUT = results/soak/<UTC time> unless SOAK_OUT is set.
# Uses target/release/inferload, or $INFERLOAD when set; build it first with
# `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."

rate="${1:-5000/s}"
duration="${2:-10m}"
every="${3:-5}"
bin="${INFERLOAD:-${CARGO_TARGET_DIR:-target}/release/inferload}"
out="${SOAK_OUT:-results/soak/$(date -u +%Y%m%dT%H%M%SZ)}"
[[ -x "$bin" ]] || { echo "error: $bin not found; run cargo build --release or set INFERLOAD" >&2; exit 2; }
mkdir -p "$out"
work="$(mktemp -d)"
server_pid=""
client_pid=""
cleanup() {
    [[ -n "$client_pid" ]] && kill "$client_pid" 2>/dev/null || true
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" serve --addr 127.0.0.1:0 --latency fixed:1ms > "$work/serve.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    url="$(grep -o 'http://[0-9.:]*' "$work/serve.out" || true)"
    [[ -n "$url" ]] && break
    sleep 0.1
done
[[ -n "$url" ]] || { echo "error: inferload serve did not start" >&2; exit 1; }

mkdir -p "$work/payloads"
cp scenarios/payloads/quickstart.json "$work/payloads/"
cat > "$work/soak.toml" <<TOML
name = "soak"

[target]
url = "$url"
model = "soak-model"

[payload]
file = "payloads/quickstart.json"

[load]
rate = "$rate"
duration = "$duration"
connections = 64
TOML

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo ""; }

"$bin" run "$work/soak.toml" --out "$out/run" > "$out/run.log" 2>&1 &
client_pid=$!
start=$(date +%s.%N)
echo "elapsed_s,client_rss_kib,server_rss_kib" > "$out/rss.csv"
while kill -0 "$client_pid" 2>/dev/null; do
    client="$(rss_kib "$client_pid")"
    server="$(rss_kib "$server_pid")"
    [[ -n "$client" ]] && printf '%.1f,%s,%s\n' "$(echo "$(date +%s.%N) - $start" | bc)" "$client" "$server" >> "$out/rss.csv"
    sleep "$every"
done
set +e
wait "$client_pid"
status=$?
set -e
client_pid=""
cp "$out/run/summary.json" "$out/summary.json" 2>/dev/null || true
echo "run exit status $status; results in $out"
awk -F, 'NR > 1 { if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2; last = $2; if (NR == 2) first = $2 }
    END { printf "client VmRSS KiB: first %s, min %s, max %s, last %s (%d samples)\n", first, min, max, last, NR - 1 }' "$out/rss.csv"
awk -F, 'NR > 1 { if (min == "" || $3 < min) min = $3; if ($3 > max) max = $3; last = $3; if (NR == 2) first = $3 }
    END { printf "server VmRSS KiB: first %s, min %s, max %s, last %s\n", first, min, max, last }' "$out/rss.csv"
exit "$status"
