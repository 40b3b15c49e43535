#!/usr/bin/env bash
# Runs each coverage-guided fuzz target (fuzz/fuzz_targets: request decoding, produce record
# sets, log recovery from arbitrary segment bytes) for SECONDS (default 60) from its committed
# seed corpus (fuzz/corpus/<target>), with libFuzzer's allocation limit: a single allocation
# above 256 MiB counts as a crash, as does any panic or sanitizer report. New inputs the
# fuzzer finds go to a temporary directory, not into the repository; a crash input is kept in
# fuzz/artifacts/<target>/ and should become a file of fuzz/corpus/<target>/ once fixed.
# Needs the nightly toolchain (cargo fuzz builds with -Zsanitizer=address); installs
# cargo-fuzz from crates.io if missing. Exits non-zero on any crash, or if it cannot fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz: NOT RUN: no nightly toolchain on this machine (cargo fuzz needs it)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz --version 0.13.2
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd fuzz && cargo +nightly fuzz build -O)
status=0
for target in decode_request record_set log_recovery; do
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    if (cd fuzz && cargo +nightly fuzz run -O "$target" "$scratch/$target" "corpus/$target" -- \
            -max_total_time="$SECONDS_PER_TARGET" -malloc_limit_mb=256 -rss_limit_mb=2048 \
            -print_final_stats=1) >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        echo "fuzz: $target: ${runs:-?} inputs in ${SECONDS_PER_TARGET}s, no crash"
    else
        echo "fuzz: $target FAILED (crash input in fuzz/artifacts/$target/):"
        grep -E "ERROR|panicked|SUMMARY|Test unit written" "$log" | head -20 || tail -40 "$log"
        status=1
    fi
done
exit $status
