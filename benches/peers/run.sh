#!/usr/bin/env bash
# Compare inferload with wrk, oha, hey, h2load, perf_analyzer and Artillery on this machine.
#
# Installs the peers from the package registries (apt: wrk, hey, nghttp2-client, nginx; cargo:
# oha; npm: artillery; PyPI: tritonclient[all], which ships perf_analyzer), builds inferload in
# release mode, then runs benches/peers/compare.py. Every request goes to 127.0.0.1.
#
# Usage: benches/peers/run.sh [--quick] [--sections closed,open,h2,soak,chain] [--out DIR]
#                             [--no-install] [compare.py options...]
#   --quick       2 repetitions of 3 s (chain: 10 s) instead of 5 of 10 s (chain: 30 s)
#   --sections    default closed,open,h2; soak adds a 5-minute run at 20,000 req/s and chain
#                 the testbed (testbed/up) at 1000/min, 100/s and 250/s
#   --out DIR     default results/benchmarks/<UTC time>
#   --no-install  use the peers already installed
# Environment: PEERS_DIR (default ~/.cache/inferload-peers) holds oha, Artillery and the
# tritonclient virtualenv; CARGO_TARGET_DIR is honoured for the inferload build.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
peers_dir="${PEERS_DIR:-$HOME/.cache/inferload-peers}"

# Pinned peer versions.
OHA_VERSION="1.16.0"
ARTILLERY_VERSION="2.0.21"  # the last release that runs on Node 20 (2.0.22 needs >= 22.13)
TRITONCLIENT_VERSION="2.40.0"
CUDA_RUNTIME_VERSION="12.9.79"

install=1
sections="closed,open,h2"
out=""
quick=()
passthrough=()
while (($#)); do
    case "$1" in
        --quick) quick=(--quick) ;;
        --no-install) install=0 ;;
        --sections) sections="$2"; shift ;;
        --out) out="$2"; shift ;;
        -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) passthrough+=("$1") ;;
    esac
    shift
done
out="${out:-$repo/results/benchmarks/$(date -u +%Y%m%dT%H%M%SZ)}"

log() { printf '%s\n' "$*" >&2; }

install_apt() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v hey >/dev/null || missing+=(hey)
    command -v h2load >/dev/null || missing+=(nghttp2-client)
    command -v nginx >/dev/null || missing+=(nginx)
    command -v taskset >/dev/null || missing+=(util-linux)
    if ((${#missing[@]})); then
        log "installing with apt-get: ${missing[*]}"
        local sudo=()
        ((EUID == 0)) || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

install_oha() {
    local oha="$peers_dir/oha/bin/oha"
    if [[ ! -x "$oha" ]] || [[ "$("$oha" --version 2>/dev/null)" != *"$OHA_VERSION"* ]]; then
        log "installing oha $OHA_VERSION with cargo install (a few minutes of compiling)"
        cargo install --quiet --locked --root "$peers_dir/oha" --version "$OHA_VERSION" oha
    fi
}

install_artillery() {
    local artillery="$peers_dir/npm/node_modules/.bin/artillery"
    if [[ ! -x "$artillery" ]] || ! grep -q "\"version\": \"$ARTILLERY_VERSION\"" \
        "$peers_dir/npm/node_modules/artillery/package.json" 2>/dev/null; then
        log "installing artillery $ARTILLERY_VERSION with npm"
        command -v npm >/dev/null || { log "npm is missing: apt-get install npm"; return 1; }
        # Artillery pulls in Playwright, whose install step downloads a browser that the HTTP
        # engine does not use.
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --silent --no-audit --no-fund \
            --prefix "$peers_dir/npm" "artillery@$ARTILLERY_VERSION" >/dev/null
    fi
}

# perf_analyzer from the tritonclient wheel links libb64.so.0d (Debian libb64-0d) and
# libcudart.so.12 (the nvidia-cuda-runtime-cu12 wheel); it runs without a GPU.
install_perf_analyzer() {
    local venv="$peers_dir/venv"
    if [[ ! -x "$venv/bin/python" ]]; then
        python3 -m venv "$venv"
    fi
    if ! "$venv/bin/pip" show tritonclient 2>/dev/null | grep -q "^Version: $TRITONCLIENT_VERSION$"; then
        log "installing tritonclient[all]==$TRITONCLIENT_VERSION with pip (ships perf_analyzer)"
        "$venv/bin/pip" install --quiet "tritonclient[all]==$TRITONCLIENT_VERSION"
    fi
    if ! "$venv/bin/pip" show nvidia-cuda-runtime-cu12 >/dev/null 2>&1; then
        "$venv/bin/pip" install --quiet "nvidia-cuda-runtime-cu12==$CUDA_RUNTIME_VERSION"
    fi
    if ! dpkg-query -W -f='${Status}' libb64-0d 2>/dev/null | grep -q "ok installed"; then
        local sudo=()
        ((EUID == 0)) || sudo=(sudo)
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq libb64-0d >/dev/null
    fi
}

mkdir -p "$peers_dir"
if ((install)); then
    install_apt
    install_oha
    if [[ ",$sections," == *",chain,"* ]]; then
        install_artillery || log "Artillery could not be installed; the chain section reports it as missing"
        install_perf_analyzer || log "tritonclient could not be installed; the chain section reports it as missing"
    fi
fi

log "building inferload (release)"
(cd "$repo" && cargo build --release --quiet --bin inferload)
inferload="${CARGO_TARGET_DIR:-$repo/target}/release/inferload"

oha="$peers_dir/oha/bin/oha"
[[ -x "$oha" ]] || oha="$(command -v oha || true)"
perf_analyzer="$(ls "$peers_dir"/venv/bin/perf_analyzer 2>/dev/null || true)"
perf_analyzer_libs="$(ls -d "$peers_dir"/venv/lib/python3*/site-packages/nvidia/cuda_runtime/lib 2>/dev/null | head -1 || true)"
artillery="$peers_dir/npm/node_modules/.bin/artillery"

uptime >&2
exec python3 "$repo/benches/peers/compare.py" \
    --inferload "$inferload" --oha "${oha:-oha}" \
    ${perf_analyzer:+--perf-analyzer "$perf_analyzer"} \
    ${perf_analyzer_libs:+--perf-analyzer-libs "$perf_analyzer_libs"} --artillery "$artillery" \
    --out "$out" --sections "$sections" "${quick[@]}" "${passthrough[@]}"
