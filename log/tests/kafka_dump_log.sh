#!/usr/bin/env bash
# Checks gregor's on-disk format with Apache Kafka's own tool (what `kafka-dump-log.sh` runs):
# org.apache.kafka.tools.DumpLogSegments (Kafka 4.x; `kafka.tools.DumpLogSegments` in 3.x).
#
# 1. Fetches Kafka's jars once with Maven (log/tests/kafka-tools/pom.xml) into
#    $KAFKA_TOOLS_LIB (default <cargo target dir>/kafka-tools-lib).
# 2. Writes a gregor log (examples/write_kafka_log.rs: 200 keyed records in 40 batches, some
#    gzip, several segments, dense indexes, closed cleanly).
# 3. Dumps every segment with its .index and .timeindex (--print-data-log --deep-iteration)
#    and asserts: every batch valid, every offset 0..199 with key-N / value-N / its
#    timestamp, index and time index entries printed, and no verification error on stderr.
# 4. Tampers with a copy of one index and time index and asserts the tool reports both, so
#    the "no error" check above is not vacuous.
# 5. Does the same for a compacted log (examples/write_compacted_log.rs).
# Prints "N passed, 0 failed" and exits 0 on success.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
LIB="${KAFKA_TOOLS_LIB:-$TARGET/kafka-tools-lib}"
CLASS=org.apache.kafka.tools.DumpLogSegments
passed=0
failed=0

check() { # check <description> <command...>
    local what="$1"
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $what" >&2
    fi
}

if ! ls "$LIB"/kafka-tools-*.jar >/dev/null 2>&1; then
    echo "fetching Apache Kafka's tools with Maven (once) into $LIB ..."
    mvn -q -B -f "$ROOT/log/tests/kafka-tools/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$LIB"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
DATA="$WORK/orders-0"
(cd "$ROOT" && cargo run -q -p gregor-log --example write_kafka_log -- "$DATA")

dump() { # dump <dir> <files> -> $WORK/out, $WORK/err (SLF4J noise dropped)
    java -cp "$LIB/*" "$CLASS" --files "$2" --print-data-log --deep-iteration \
        >"$WORK/out" 2>"$WORK/err.raw" || { echo "DumpLogSegments exited $?" >&2; return 1; }
    grep -v '^SLF4J' "$WORK/err.raw" >"$WORK/err" || true
}

: >"$WORK/all"
segments=0
for log in "$DATA"/*.log; do
    base="${log%.log}"
    segments=$((segments + 1))
    check "dump of $(basename "$log")" dump "$DATA" "$base.log,$base.index,$base.timeindex"
    echo "--- $(basename "$base") ---"
    # A preview (sed quits early; grep piped into head would die of SIGPIPE under pipefail).
    sed -n '/^baseOffset/{s/\(.\{150\}\).*/\1 .../p;q}' "$WORK/out"
    sed -n '/^| offset/{p;q}' "$WORK/out"
    sed -n '/^offset: [0-9]* position/{p;q}' "$WORK/out"
    sed -n '/^timestamp: /p' "$WORK/out" | tail -n 1
    # Kafka's deep iteration starts its consecutiveness check at -1, so any segment not based
    # at offset 0 is reported as "-1 is followed by <base>" (Kafka's own segments too): that
    # one pair is expected, anything else is an error.
    seg_base="$((10#$(basename "$base")))"
    if [ "$seg_base" -ne 0 ]; then
        grep -vxF -e "Non-consecutive offsets in $base.log" -e "  -1 is followed by $seg_base" \
            "$WORK/err" >"$WORK/err.rest" || true
        mv "$WORK/err.rest" "$WORK/err"
    fi
    if [ -s "$WORK/err" ]; then
        echo "DumpLogSegments reported errors for $(basename "$base"):" >&2
        cat "$WORK/err" >&2
    fi
    check "no verification error for $(basename "$base")" test ! -s "$WORK/err"
    check "index entries printed for $(basename "$base")" grep -qE '^offset: [0-9]+ position: [0-9]+$' "$WORK/out"
    check "time index entries printed for $(basename "$base")" grep -qE '^timestamp: [0-9]+ offset: [0-9]+$' "$WORK/out"
    # The last time index entry is the segment's max timestamp at its last offset.
    last_offset="$(sed -n 's/^| offset: \([0-9]*\) .*/\1/p' "$WORK/out" | tail -n 1)"
    check "final time index entry of $(basename "$base")" \
        grep -qx "timestamp: $((1700000000000 + last_offset)) offset: $last_offset" "$WORK/out"
    cat "$WORK/out" >>"$WORK/all"
done

check "several segments" test "$segments" -ge 3
batches="$(grep -cE '^baseOffset: .* isvalid: true$' "$WORK/all" || true)"
check "40 valid batches (found $batches)" test "$batches" -eq 40
check "no invalid batch" bash -c "! grep -q 'isvalid: false' '$WORK/all'"
check "gzip batches read" grep -q 'compresscodec: gzip' "$WORK/all"
grep -E '^\| offset' "$WORK/all" |
    sed -E 's/^\| offset: ([0-9]+) CreateTime: ([0-9]+) .* key: (.*) payload: (.*)$/\1 \2 \3 \4/' >"$WORK/records"
expected="$(for n in $(seq 0 199); do echo "$n $((1700000000000 + n)) key-$n value-$n"; done)"
check "offsets 0..199 with their keys, values and timestamps" \
    diff <(echo "$expected") "$WORK/records"

# Negative control: the tool does catch a wrong index entry and a wrong time index entry.
mkdir "$WORK/bad"
cp "$DATA"/00000000000000000000.* "$WORK/bad/"
python3 - "$WORK/bad" <<'PY'
import struct, sys
d = sys.argv[1] + "/00000000000000000000"
b = bytearray(open(d + ".index", "rb").read()); b[8:12] = struct.pack(">I", struct.unpack(">I", b[8:12])[0] - 1)
open(d + ".index", "wb").write(b)
t = bytearray(open(d + ".timeindex", "rb").read()); t[0:8] = struct.pack(">q", struct.unpack(">q", t[0:8])[0] - 1)
open(d + ".timeindex", "wb").write(t)
PY
B="$WORK/bad/00000000000000000000"
dump "$WORK/bad" "$B.index,$B.timeindex" || true
check "tampered index detected" grep -q '^Mismatches in' "$WORK/err"
check "tampered time index detected" grep -q 'timestamp mismatch' "$WORK/err"

# A compacted log: the cleaner's rebuilt batches (fewer records, same base offset and last
# offset delta, gzip recompressed) and merged segments read by Kafka's tool: every batch
# valid, no error but the offset gaps compaction leaves (Kafka's own compacted segments show
# the same), and exactly the records the cleaner keeps.
CDATA="$WORK/compacted-0"
(cd "$ROOT" && cargo run -q -p gregor-log --example write_compacted_log -- "$CDATA" "$WORK/compacted.expected")
: >"$WORK/call"
for log in "$CDATA"/*.log; do
    base="${log%.log}"
    check "dump of compacted $(basename "$log")" dump "$CDATA" "$base.log,$base.index,$base.timeindex"
    grep -vE -e "^Non-consecutive offsets in $base.log$" -e '^  -?[0-9]+ is followed by [0-9]+$' \
        "$WORK/err" >"$WORK/err.rest" || true
    if [ -s "$WORK/err.rest" ]; then
        echo "DumpLogSegments reported errors for compacted $(basename "$base"):" >&2
        cat "$WORK/err.rest" >&2
    fi
    check "no verification error for compacted $(basename "$base")" test ! -s "$WORK/err.rest"
    cat "$WORK/out" >>"$WORK/call"
done
check "no invalid compacted batch" bash -c "! grep -q 'isvalid: false' '$WORK/call'"
check "compacted gzip batches read" grep -q 'compresscodec: gzip' "$WORK/call"
grep -E '^\| offset' "$WORK/call" |
    sed -E 's/^\| offset: ([0-9]+) CreateTime: ([0-9]+) .* key: (.*) payload: (.*)$/\1 \2 \3 \4/' >"$WORK/crecords"
check "compacted records are the newest per key plus the active segment" \
    diff "$WORK/compacted.expected" "$WORK/crecords"

echo "kafka_dump_log: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
