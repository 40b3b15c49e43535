#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (run as root): kcat from
# Debian, the Python clients (confluent-kafka, kafka-python + its codecs, pytest) from PyPI,
# the Java client (kafka-clients 4.x) built into compat-tests/java/target by Maven, the Go
# clients (franz-go, sarama) built into compat-tests/go/bin/compat-go, and the JavaScript
# clients (KafkaJS, @confluentinc/kafka-javascript) into compat-tests/node by npm.
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- kcat (Debian's 1.7.1, librdkafka 2.0.2: the one users get with apt) -------------------
if ! command -v kcat >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y kcat
fi

# --- openssl (compat-tests/security_test.py makes its certificates with it) -----------------
if ! command -v openssl >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y openssl
fi

# --- iproute2 (`ip netns`, for the replication test's network partitions) --------------------
if ! command -v ip >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y iproute2
fi

# --- valgrind (scripts/instructions counts the broker's instructions with callgrind) ---------
if ! command -v callgrind_control >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind
fi

# --- Docker engine, Compose v1 and debootstrap (tests/docker_test.py) ----------------------
# The machine may have a docker client alone; the engine (dockerd) comes from Debian's docker.io.
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1 || \
        ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        docker.io docker-compose debootstrap
fi

# --- ZooKeeper (Debian 3.8.0, run by scripts/zookeeper.sh with java directly) ---------------
if [[ ! -f /usr/share/java/zookeeper.jar ]]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y zookeeper
fi

# --- Python clients -------------------------------------------------------------------------
PY_PKGS=(
    "confluent-kafka==2.16.1"
    "kafka-python==3.0.12"
    "pytest==9.2.0"
    "python-snappy==0.7.3"   # kafka-python's snappy codec
    "lz4==4.4.5"             # kafka-python's lz4 codec
    "zstandard==0.25.0"      # kafka-python's zstd codec
    "kazoo==2.11.0"          # the interop test reads ZooKeeper trees
)
if ! python3 - "${PY_PKGS[@]}" <<'PYEOF'
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PYEOF
then
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "${PY_PKGS[@]}"
fi

# --- Java client (kafka-clients 4.x) ---------------------------------------------------------
JAVA_DIR=compat-tests/java
STAMP=$JAVA_DIR/target/.built
if [[ ! -f $STAMP || $JAVA_DIR/pom.xml -nt $STAMP || \
      -n "$(find $JAVA_DIR/src -newer $STAMP -type f 2>/dev/null)" ]]; then
    rm -rf $JAVA_DIR/target/dependency
    (cd $JAVA_DIR && mvn -q -B -DskipTests package dependency:copy-dependencies \
        -DoutputDirectory=target/dependency -DincludeScope=runtime)
    touch $STAMP
fi
# --- Apache Kafka's tools (log/tests/kafka-tools/pom.xml) into target/kafka-tools-lib ---------
# Used by log/tests/kafka_dump_log.sh, tests/kafka_tools.py, tests/kafka_consumer_groups.py and
# compat-tests/replication_test.py (kafka-leader-election.sh); fetched here so that no suite
# depends on another having run first (scripts/test.sh runs them in two lanes).
tools_lib=${KAFKA_TOOLS_LIB:-$(pwd)/target/kafka-tools-lib}
if ! ls "$tools_lib"/kafka-tools-*.jar >/dev/null 2>&1; then
    mvn -q -B -f log/tests/kafka-tools/pom.xml dependency:copy-dependencies \
        -DoutputDirectory="$tools_lib"
fi

# --- Go clients (franz-go, sarama): one binary built from compat-tests/go -------------------
# Modules come from the Go module proxy (go's default GOPROXY) into the module cache, pinned by
# the committed go.mod / go.sum (-mod=readonly: a build never edits them).
GO_DIR=compat-tests/go
GO_BIN=$GO_DIR/bin/compat-go
if ! command -v go >/dev/null 2>&1; then
    echo "install-deps: the Go toolchain (go 1.26+) is needed to build $GO_BIN" >&2
    exit 1
fi
if [[ ! -x $GO_BIN || -n "$(find $GO_DIR -maxdepth 1 \( -name '*.go' -o -name go.mod -o -name go.sum \) \
        -newer $GO_BIN 2>/dev/null)" ]]; then
    (cd $GO_DIR && GOFLAGS=-mod=readonly go mod download && \
        GOFLAGS=-mod=readonly go build -trimpath -o bin/compat-go .)
fi

# --- JavaScript clients: KafkaJS and @confluentinc/kafka-javascript (compat-tests/node) ------
# @confluentinc/kafka-javascript's install first tries a prebuilt binary from GitHub, which this
# machine cannot reach, then compiles its bundled librdkafka (2.15.1) and its binding with
# node-gyp (about 3 minutes on 2 cores, with zstd-napi and lz4 for KafkaJS's codecs).
# - CKJS_LINKING=dynamic: the default static build would first download zlib, OpenSSL, zstd and
#   curl sources (librdkafka's --install-deps), unreachable too; the dynamic one links the same
#   bundled librdkafka against Debian's zlib, OpenSSL and libzstd (librdkafka.so stays inside
#   node_modules, found by rpath). Debian's own librdkafka (2.0.2) is too old for the binding
#   (no DescribeTopics, ListOffsets, Uuid API) and has no KIP-848 consumer.
# - CFLAGS/CXXFLAGS=-g0: no debug info (librdkafka builds with -g -O2): the same -O2 code, in
#   about 60% of the compile time; the price is unsymbolized backtraces in a debugger.
# - No JOBS=max for node-gyp: the package's gyp makefile is not safe in parallel (its librdkafka
#   build step does not wait for its configure step).
# - node-gyp takes Node's headers from Debian's nodejs (/usr/include/node): its default
#   download of them is unreachable too.
NODE_DEBS=()
for pkg in libzstd-dev libssl-dev zlib1g-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || NODE_DEBS+=("$pkg")
done
if (( ${#NODE_DEBS[@]} )); then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${NODE_DEBS[@]}"
fi
NODE_DIR=compat-tests/node
NODE_STAMP=$NODE_DIR/node_modules/.installed   # written only once `npm ci` succeeded
if [[ ! -f $NODE_STAMP || $NODE_DIR/package-lock.json -nt $NODE_STAMP ]]; then
    nodedir=()
    [[ -f /usr/include/node/node.h ]] && nodedir=(--nodedir=/usr)
    (cd $NODE_DIR && CKJS_LINKING=dynamic CFLAGS=-g0 CXXFLAGS=-g0 \
        npm ci --no-audit --no-fund "${nodedir[@]}")
    touch $NODE_STAMP
fi

echo "install-deps: kcat $(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*/\1/p'), Python, Java, Go and JavaScript clients ready"
