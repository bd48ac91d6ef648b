#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 60 s each) and stops at the first
# crash. Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
# Builds go to $FUZZ_TARGET_DIR (default fuzz/target, git-ignored). Crashes are written to
# fuzz/artifacts/<target>/; corpora grow in fuzz/corpus/<target>/, seeded from fuzz/seeds/.
# The last line of each target's libFuzzer output (executions, coverage) is printed.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
target_dir="${FUZZ_TARGET_DIR:-$PWD/target}"

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" logs
    case "$target" in
        scenario) cp ../scenarios/*.toml "corpus/$target/" 2>/dev/null || true ;;
        payload) cp ../scenarios/payloads/*.json "corpus/$target/" 2>/dev/null || true ;;
    esac
    if [[ -d "seeds/$target" ]]; then
        cp "seeds/$target"/* "corpus/$target/"
    fi
    echo "== $target: ${seconds}s"
    cargo +nightly fuzz run --target-dir "$target_dir" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1 \
        >"logs/$target.log" 2>&1 || {
        tail -n 60 "logs/$target.log"
        echo "fuzz: $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    }
    grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "logs/$target.log" || true
done
echo "fuzz: every target ran ${seconds}s without a crash"
