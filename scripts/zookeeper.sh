#!/usr/bin/env bash
# Starts, stops and checks a real Apache ZooKeeper on 127.0.0.1: one standalone server or a
# 3-node ensemble, from Debian's `zookeeper` package, run with java directly (Debian's zkEnv.sh
# hard-codes /etc/zookeeper/conf). Everything a run creates lives under one directory DIR:
#
#   DIR/node<i>/zoo.cfg, DIR/node<i>/data (with myid), DIR/node<i>/zookeeper.{pid,log}
#   DIR/connect-string   e.g. 127.0.0.1:21811,127.0.0.1:21812,127.0.0.1:21813
#
# Usage:
#   scripts/zookeeper.sh install                    apt-get install -y zookeeper if it is missing
#   scripts/zookeeper.sh start DIR [PORT]           standalone (free port chosen if none given)
#   scripts/zookeeper.sh start-ensemble DIR [P1 P2 P3]  3 nodes (free ports chosen if none given)
#   scripts/zookeeper.sh stop DIR                   SIGTERM every node of DIR (SIGKILL after 10 s)
#   scripts/zookeeper.sh status DIR                 `srvr` of every node; exit 1 if one is down
#   scripts/zookeeper.sh wait DIR                   wait until every node serves (ruok + srvr)
#   scripts/zookeeper.sh connect-string DIR         print the client connect string
#   scripts/zookeeper.sh pid DIR [NODE]             print the JVM pid(s) (for kill -STOP / -9 tests)
#
# Environment: ZK_TICK_MS (default 2000; session timeouts are clamped to [2, 20] ticks),
# ZK_FORCE_SYNC (default yes; tests set no to skip fsync), ZK_HEAP (default 256m),
# ZK_START_TIMEOUT (seconds, default 30), ZK_OWNER_PID (stop the nodes when that process exits:
# test harnesses set it to their own pid), ZK_ADDRESS (the standalone server's client address,
# default 127.0.0.1; the network-partition test uses a bridge address its namespaces reach).
# `start` prints the connect string on stdout (and nothing else), so callers can capture it.
set -euo pipefail

ZK_JAR=/usr/share/java/zookeeper.jar
SLF4J_JAR=/usr/share/java/slf4j-simple.jar
MAIN_CLASS=org.apache.zookeeper.server.quorum.QuorumPeerMain
TICK_MS=${ZK_TICK_MS:-2000}
FORCE_SYNC=${ZK_FORCE_SYNC:-yes}
HEAP=${ZK_HEAP:-256m}
START_TIMEOUT=${ZK_START_TIMEOUT:-30}

log() { echo "zookeeper.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

require_zookeeper() {
    [[ -f $ZK_JAR ]] || die "$ZK_JAR not found: the Debian package 'zookeeper' is not installed (run: apt-get install -y zookeeper, or scripts/zookeeper.sh install)"
    command -v java >/dev/null 2>&1 || die "java not found (the Debian package 'zookeeper' pulls in a JRE: apt-get install -y zookeeper)"
}

classpath() {
    if [[ -f $SLF4J_JAR ]]; then echo "$ZK_JAR:$SLF4J_JAR"; else echo "$ZK_JAR"; fi
}

# Prints N distinct free TCP ports on 127.0.0.1 (bound and released by the kernel's choice).
free_ports() {
    python3 - "$1" <<'PYEOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PYEOF
}

# Sends a four-letter word to ADDRESS:PORT and prints the answer (empty if unreachable).
four_letter() {
    local address=$1 port=$2 word=$3
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "%s" "$2" >&3
        cat <&3
    ' "$address" "$port" "$word" 2>/dev/null || true
}

node_dirs() {
    local dir=$1
    compgen -G "$dir/node*/zoo.cfg" >/dev/null || return 0
    for cfg in "$dir"/node*/zoo.cfg; do dirname "$cfg"; done
}

client_port_of() { sed -n 's/^clientPort=//p' "$1/zoo.cfg"; }
client_address_of() { sed -n 's/^clientPortAddress=//p' "$1/zoo.cfg"; }

write_config() {
    local node_dir=$1 port=$2 servers=$3 address=${4:-127.0.0.1}
    mkdir -p "$node_dir/data"
    cat >"$node_dir/zoo.cfg" <<EOF
# written by scripts/zookeeper.sh
tickTime=$TICK_MS
initLimit=10
syncLimit=5
dataDir=$node_dir/data
clientPort=$port
clientPortAddress=$address
admin.enableServer=false
4lw.commands.whitelist=*
forceSync=$FORCE_SYNC
maxClientCnxns=0
$servers
EOF
}

start_node() {
    local node_dir=$1
    local pid_file=$node_dir/zookeeper.pid
    if [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
        log "$node_dir already running (pid $(cat "$pid_file"))"
        return 0
    fi
    # stdin/stdout/stderr detached from the caller: a caller that collects our output (a test
    # harness) must not wait for the JVM to exit.
    nohup java -Xmx"$HEAP" -XX:+UseSerialGC -Dzookeeper.admin.enableServer=false \
        -Dslf4j.internal.verbosity=WARN -cp "$(classpath)" "$MAIN_CLASS" "$node_dir/zoo.cfg" \
        </dev/null >"$node_dir/zookeeper.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$pid_file"
    if [[ -n ${ZK_OWNER_PID:-} ]]; then
        # Watchdog: stop this node once the owner (e.g. a test binary) is gone, even if it
        # never got to call `stop` (a panic, a static that is never dropped, kill -9).
        nohup bash -c 'while kill -0 "$0" 2>/dev/null && kill -0 "$1" 2>/dev/null; do sleep 1; done
            kill -TERM "$1" 2>/dev/null' "$ZK_OWNER_PID" "$pid" </dev/null >/dev/null 2>&1 &
    fi
}

wait_healthy() {
    local dir=$1 expect_mode=$2
    local deadline=$((SECONDS + START_TIMEOUT))
    local node
    for node in $(node_dirs "$dir"); do
        local port pid
        port=$(client_port_of "$node")
        pid=$(cat "$node/zookeeper.pid" 2>/dev/null || echo 0)
        while true; do
            if ! kill -0 "$pid" 2>/dev/null; then
                log "ZooKeeper in $node (pid $pid) exited; last lines of its log:"
                tail -n 30 "$node/zookeeper.log" >&2 || true
                return 1
            fi
            if [[ $(four_letter "$(client_address_of "$node")" "$port" ruok) == imok ]] &&
                four_letter "$(client_address_of "$node")" "$port" srvr | grep -Eq "^Mode: ($expect_mode)"; then
                break
            fi
            if ((SECONDS >= deadline)); then
                log "ZooKeeper in $node (port $port) not healthy after ${START_TIMEOUT}s; last lines of its log:"
                tail -n 30 "$node/zookeeper.log" >&2 || true
                return 1
            fi
            sleep 0.2
        done
    done
}

cmd_start() {
    local dir=${1:?usage: zookeeper.sh start DIR [PORT]}
    local port=${2:-}
    require_zookeeper
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ -n $port ]] || port=$(free_ports 1)
    local address=${ZK_ADDRESS:-127.0.0.1}
    write_config "$dir/node1" "$port" "" "$address"
    start_node "$dir/node1"
    echo "$address:$port" >"$dir/connect-string"
    if ! wait_healthy "$dir" standalone; then
        cmd_stop "$dir"
        die "standalone ZooKeeper did not start"
    fi
    log "standalone ZooKeeper on $address:$port (pid $(cat "$dir/node1/zookeeper.pid"), dir $dir)"
    cat "$dir/connect-string"
}

cmd_start_ensemble() {
    local dir=${1:?usage: zookeeper.sh start-ensemble DIR [P1 P2 P3]}
    shift
    require_zookeeper
    local ports=("$@")
    if ((${#ports[@]} == 0)); then
        read -r -a ports <<<"$(free_ports 3)"
    fi
    ((${#ports[@]} == 3)) || die "start-ensemble needs 3 client ports (got ${#ports[@]})"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local peer
    read -r -a peer <<<"$(free_ports 6)"
    local servers="" i
    for i in 1 2 3; do
        servers+="server.$i=127.0.0.1:${peer[$((2 * i - 2))]}:${peer[$((2 * i - 1))]}"$'\n'
    done
    local connect=""
    for i in 1 2 3; do
        write_config "$dir/node$i" "${ports[$((i - 1))]}" "$servers"
        echo "$i" >"$dir/node$i/data/myid"
        connect+="${connect:+,}127.0.0.1:${ports[$((i - 1))]}"
    done
    for i in 1 2 3; do start_node "$dir/node$i"; done
    echo "$connect" >"$dir/connect-string"
    if ! wait_healthy "$dir" "leader|follower"; then
        cmd_stop "$dir"
        die "ZooKeeper ensemble did not start"
    fi
    log "3-node ZooKeeper ensemble on $connect (dir $dir)"
    cat "$dir/connect-string"
}

cmd_stop() {
    local dir=${1:?usage: zookeeper.sh stop DIR}
    local node
    for node in $(node_dirs "$dir"); do
        local pid_file=$node/zookeeper.pid
        [[ -f $pid_file ]] || continue
        local pid
        pid=$(cat "$pid_file")
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            local waited=0
            while kill -0 "$pid" 2>/dev/null && ((waited < 100)); do
                sleep 0.1
                waited=$((waited + 1))
            done
            if kill -0 "$pid" 2>/dev/null; then
                log "pid $pid ignored SIGTERM for 10 s; SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        rm -f "$pid_file"
    done
}

cmd_status() {
    local dir=${1:?usage: zookeeper.sh status DIR}
    local node rc=0 any=0
    for node in $(node_dirs "$dir"); do
        any=1
        local port answer
        port=$(client_port_of "$node")
        answer=$(four_letter "$(client_address_of "$node")" "$port" srvr | sed -n 's/^Mode: //p')
        if [[ -n $answer ]]; then
            echo "$(basename "$node") 127.0.0.1:$port pid $(cat "$node/zookeeper.pid" 2>/dev/null || echo '?') $answer"
        else
            echo "$(basename "$node") 127.0.0.1:$port down"
            rc=1
        fi
    done
    ((any)) || { echo "no ZooKeeper configured under $dir"; return 1; }
    return $rc
}

cmd_wait() {
    local dir=${1:?usage: zookeeper.sh wait DIR}
    local mode=standalone
    (($(node_dirs "$dir" | wc -l) > 1)) && mode="leader|follower"
    wait_healthy "$dir" "$mode"
}

cmd_pid() {
    local dir=${1:?usage: zookeeper.sh pid DIR [NODE]}
    if [[ -n ${2:-} ]]; then
        cat "$dir/node$2/zookeeper.pid"
    else
        local node
        for node in $(node_dirs "$dir"); do cat "$node/zookeeper.pid"; done
    fi
}

cmd_install() {
    if [[ -f $ZK_JAR ]] && command -v java >/dev/null 2>&1; then
        log "zookeeper already installed"
        return 0
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y zookeeper
}

case ${1:-} in
    install) cmd_install ;;
    start) shift; cmd_start "$@" ;;
    start-ensemble) shift; cmd_start_ensemble "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    status) shift; cmd_status "$@" ;;
    wait) shift; cmd_wait "$@" ;;
    connect-string) cat "${2:?usage: zookeeper.sh connect-string DIR}/connect-string" ;;
    pid) shift; cmd_pid "$@" ;;
    *) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
