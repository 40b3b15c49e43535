#!/usr/bin/env bash
# Starts and stops a local gregor cluster: a ZooKeeper (scripts/zookeeper.sh, standalone or a
# 3-node ensemble) and N gregor brokers on 127.0.0.1, everything under one directory DIR:
#
#   DIR/zk/...                 ZooKeeper (see scripts/zookeeper.sh)
#   DIR/broker<i>/             log.dirs of broker i (ids 1..N)
#   DIR/broker<i>.{log,pid}    its stderr and pid (broker<i>.previous.log: before restarts)
#   DIR/bootstrap              the bootstrap servers, e.g. 127.0.0.1:19092,127.0.0.1:19093
#
# Usage:
#   scripts/cluster.sh start DIR [N] [--ensemble]   N brokers (default 3), ports 19092.. (BASE_PORT)
#   scripts/cluster.sh stop DIR                     SIGTERM the brokers, then stop ZooKeeper
#   scripts/cluster.sh rolling-restart DIR          restart each broker in turn (SIGTERM: a
#       controlled shutdown; then started again), each only once the cluster is healthy
#       (`gregor cluster health`: every partition led, every ISR whole), as Kafka's
#       operators wait for no under-replicated partitions; fails if it does not become so
#       within HEALTH_WAIT_MS (default 120000)
#   scripts/cluster.sh restart-broker DIR I         SIGTERM broker I if it runs, start it again
#
# Environment: GREGOR (binary, default target/release/gregor), BASE_PORT (default 19092),
# CHROOT (default /gregor), SESSION_TIMEOUT_MS (default 6000), ZK_* as for zookeeper.sh,
# METRICS_BASE_PORT (default 0: no metrics endpoint, since the brokers share one host; set
# e.g. 19644 to give broker i Prometheus metrics on METRICS_BASE_PORT + i - 1).
# `start` records what `rolling-restart` needs in DIR (zk_connect, base_port).
# `start` prints the bootstrap servers on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

GREGOR=${GREGOR:-target/release/gregor}
BASE_PORT=${BASE_PORT:-19092}
CHROOT=${CHROOT:-/gregor}
SESSION_TIMEOUT_MS=${SESSION_TIMEOUT_MS:-6000}
METRICS_BASE_PORT=${METRICS_BASE_PORT:-0}

log() { echo "cluster.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# Waits until broker I says it serves (registered in ZooKeeper, logs open); fails if it exited.
wait_serving() {
    local dir=$1 i=$2 deadline=$((SECONDS + 60))
    until grep -q "gregor is serving" "$dir/broker$i.log" 2>/dev/null; do
        kill -0 "$(cat "$dir/broker$i.pid")" 2>/dev/null || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# Starts broker I of the cluster in DIR on its port, its stderr in DIR/broker<I>.log.
start_broker() {
    local dir=$1 i=$2 zk=$3 base_port=$4
    local port=$((base_port + i - 1))
    local metrics_port=0
    ((METRICS_BASE_PORT == 0)) || metrics_port=$((METRICS_BASE_PORT + i - 1))
    "$GREGOR" --override "broker.id=$i" \
        --override "listeners=PLAINTEXT://127.0.0.1:$port" \
        --override "metrics.port=$metrics_port" \
        --override "log.dirs=$dir/broker$i" \
        --override "zookeeper.connect=$zk$CHROOT" \
        --override "zookeeper.session.timeout.ms=$SESSION_TIMEOUT_MS" \
        </dev/null >/dev/null 2>"$dir/broker$i.log" &
    echo $! >"$dir/broker$i.pid"
}

cmd_start() {
    local dir=${1:?usage: cluster.sh start DIR [N] [--ensemble]}
    local n=${2:-3} mode=start
    [[ ${3:-} == --ensemble || ${2:-} == --ensemble ]] && mode=start-ensemble
    [[ $n == --ensemble ]] && n=3
    [[ -x $GREGOR ]] || die "$GREGOR not found (cargo build --release)"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local zk
    zk=$(scripts/zookeeper.sh "$mode" "$dir/zk")
    local bootstrap="" i
    echo "$zk" >"$dir/zk_connect"
    echo "$BASE_PORT" >"$dir/base_port"
    for i in $(seq 1 "$n"); do
        start_broker "$dir" "$i" "$zk" "$BASE_PORT"
        bootstrap+="${bootstrap:+,}127.0.0.1:$((BASE_PORT + i - 1))"
    done
    for i in $(seq 1 "$n"); do
        if ! wait_serving "$dir" "$i"; then
            tail -n 20 "$dir/broker$i.log" >&2
            die "broker $i did not start (port $((BASE_PORT + i - 1)) taken? set BASE_PORT)"
        fi
    done
    echo "$bootstrap" >"$dir/bootstrap"
    log "$n brokers on $bootstrap, ZooKeeper $zk$CHROOT (dir $dir)"
    echo "$bootstrap"
}

cmd_stop() {
    local dir=${1:?usage: cluster.sh stop DIR}
    local pidfile
    for pidfile in "$dir"/broker*.pid; do
        [[ -f $pidfile ]] || continue
        kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
    done
    for pidfile in "$dir"/broker*.pid; do
        [[ -f $pidfile ]] || continue
        local pid waited=0
        pid=$(cat "$pidfile")
        while kill -0 "$pid" 2>/dev/null && ((waited < 200)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
    scripts/zookeeper.sh stop "$dir/zk"
}

# Waits until the cluster is healthy, asking broker I; fails after HEALTH_WAIT_MS.
wait_healthy() {
    local dir=$1 i=$2 port
    port=$(($(cat "$dir/base_port") + i - 1))
    if ! "$GREGOR" cluster health --bootstrap-server "127.0.0.1:$port" \
        --wait-ms "${HEALTH_WAIT_MS:-120000}" >"$dir/health" 2>&1; then
        cat "$dir/health" >&2
        return 1
    fi
}

# SIGTERMs the process in pid file $1 and waits (60 s at most) for it to exit.
stop_pid() {
    local pid waited=0
    pid=$(cat "$1")
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        ((waited < 600)) || return 1
        sleep 0.1
        waited=$((waited + 1))
    done
}

# Restarts broker I with its own settings; its previous log is appended to broker<I>.previous.log.
restart_broker() {
    local dir=$1 i=$2
    stop_pid "$dir/broker$i.pid" || die "broker $i did not exit within 60 s of SIGTERM"
    cat "$dir/broker$i.log" >>"$dir/broker$i.previous.log"
    start_broker "$dir" "$i" "$(cat "$dir/zk_connect")" "$(cat "$dir/base_port")"
    wait_serving "$dir" "$i" || { tail -n 20 "$dir/broker$i.log" >&2; die "broker $i did not start again"; }
}

cmd_restart_broker() {
    local dir=${1:?usage: cluster.sh restart-broker DIR I} i=${2:?usage: cluster.sh restart-broker DIR I}
    [[ -f $dir/zk_connect && -f $dir/broker$i.pid ]] || die "no broker $i of a cluster.sh cluster in $dir"
    dir=$(cd "$dir" && pwd)
    restart_broker "$dir" "$i"
    log "broker $i restarted"
}

cmd_rolling_restart() {
    local dir=${1:?usage: cluster.sh rolling-restart DIR}
    [[ -f $dir/zk_connect && -f $dir/base_port ]] || die "$dir was not started by cluster.sh start"
    dir=$(cd "$dir" && pwd)
    local n i
    n=$(find "$dir" -maxdepth 1 -name 'broker*.pid' | wc -l)
    ((n > 0)) || die "no broker pid files in $dir"
    for i in $(seq 1 "$n"); do
        # Another broker answers while this one restarts.
        local other=$((i % n + 1))
        wait_healthy "$dir" "$other" || die "the cluster is not healthy: not restarting broker $i"
        local started=$SECONDS
        restart_broker "$dir" "$i"
        wait_healthy "$dir" "$i" || die "the cluster did not become healthy after restarting broker $i"
        log "broker $i restarted; the cluster is healthy again ($((SECONDS - started)) s)"
    done
}

case ${1:-} in
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    rolling-restart) shift; cmd_rolling_restart "$@" ;;
    restart-broker) shift; cmd_restart_broker "$@" ;;
    *) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
