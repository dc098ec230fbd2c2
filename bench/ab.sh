#!/usr/bin/env bash
# bench/ab.sh: setups compared in interleaved rounds (setup A, B, C, then A,
# B, C again...), so that the drift of a shared machine (runs minutes apart
# differ by up to 15%) falls on every setup alike. Prints each round's
# figures, the medians, and the median of the per-round ratios against the
# first setup. See BENCHMARKS.md, "Where the targets stand".
#
#   bench/ab.sh                        # memory, SQLite and redis, 5 rounds
#   SETUPS="old new" BIN_old=/tmp/chatserver-old ARGS_old="--store memory" \
#       ARGS_new="--store memory" bench/ab.sh     # two builds
#
# A setup named `redis` is redis-server (installed with apt-get if
# missing); any other is chatserver: BIN_<name> (default: this tree's
# release build) with ARGS_<name> (default for `mem`: --store memory; for
# `sql`: a fresh data directory per run; `@DIR@` in ARGS is replaced by
# one). Servers run pinned to $SERVER_CORE, chatbench to $GEN_CORE; every
# server is stopped by its PID.
#
# Knobs (environment): SETUPS="mem sql redis"  ROUNDS=5
#   WORKLOADS="private fanout latency"  PRIVATE_MESSAGES=2000 (per client,
#   100 clients, window 16)  FANOUT_MESSAGES=25000 (per publisher, 4
#   publishers, 100 members, end-to-end window 64, acks every 16)
#   LATENCY_SECONDS=10 (2,000 msg/s into 100 members)
#   SERVER_CORE=1 GEN_CORE=0  BUILD=1 (0: the release binaries there are)
#   OUT=target/bench/ab-<date>
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[ab.sh] %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
. bench/lib.sh

SETUPS=${SETUPS:-"mem sql redis"}
ROUNDS=${ROUNDS:-5}
WORKLOADS=${WORKLOADS:-"private fanout latency"}
PRIVATE_MESSAGES=${PRIVATE_MESSAGES:-2000}
FANOUT_MESSAGES=${FANOUT_MESSAGES:-25000}
LATENCY_SECONDS=${LATENCY_SECONDS:-10}
SERVER_CORE=${SERVER_CORE:-1}
GEN_CORE=${GEN_CORE:-0}
OUT=${OUT:-target/bench/ab-$(date +%Y%m%d-%H%M%S)}
release_binaries
case " $SETUPS " in *" redis "*)
    if ! command -v redis-server >/dev/null; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        log "installing redis-server with apt-get"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
    fi
    ;;
esac
mkdir -p "$OUT"

PID=""
SERVER_ADDR=""
DIR=""
stop() {
    [ -z "$PID" ] || stop_pid "$PID"
    PID=""
    [ -z "$DIR" ] || rm -rf "$DIR"
    DIR=""
}
trap stop EXIT
trap 'exit 130' INT TERM

start() { # setup logfile
    if [ "$1" = redis ]; then
        # redis cannot pick its own port: take a free one, and if another
        # process binds it first (redis then exits), try again.
        local port
        for _ in 1 2 3 4 5; do
            port=$(free_port)
            taskset -c "$SERVER_CORE" redis-server --port "$port" --bind 127.0.0.1 \
                --protected-mode no --save "" --appendonly no --maxclients 20000 \
                --loglevel warning >"$2" 2>&1 &
            PID=$!
            SERVER_ADDR=127.0.0.1:$port
            wait_listening "$SERVER_ADDR" && redis_ping "$port" && return 0
            stop
        done
        log "redis did not start"
        return 1
    fi
    local bin_var="BIN_$1" args_var="ARGS_$1" default=""
    case $1 in mem) default="--store memory" ;; *) default="--data-dir @DIR@" ;; esac
    local bin=${!bin_var:-$CHATSERVER} args=${!args_var:-$default}
    DIR=$(mktemp -d)
    args=${args//@DIR@/$DIR/data}
    # shellcheck disable=SC2086 # the setup's arguments are words
    taskset -c "$SERVER_CORE" "$bin" --listen 127.0.0.1:0 --log-level warn --rate 0 \
        --max-clients 20000 --max-clients-per-ip 0 $args >"$2" 2>&1 &
    PID=$!
    addr_from_log "$2" 's/^listening on //p' || { log "$1 did not start:"; cat "$2" >&2; return 1; }
}

workload_args() {
    case $1 in
    private) echo "private --clients 100 --messages $PRIVATE_MESSAGES --window 16 --size 64" ;;
    fanout) echo "fanout --members 100 --publishers 4 --messages $FANOUT_MESSAGES --window 64 --size 64 --end-to-end --ack-every 16" ;;
    latency) echo "latency --members 100 --publishers 4 --rate 2000 --seconds $LATENCY_SECONDS --size 64" ;;
    *) log "unknown workload $1"; exit 1 ;;
    esac
}

log "setups: $SETUPS; $ROUNDS rounds of $WORKLOADS; reports in $OUT"
for round in $(seq 1 "$ROUNDS"); do
    for w in $WORKLOADS; do
        for s in $SETUPS; do
            target=chat
            [ "$s" = redis ] && target=redis
            start "$s" "$OUT/$s-$w-$round.log"
            # shellcheck disable=SC2046 # the workload's arguments are words
            if ! taskset -c "$GEN_CORE" "$BENCH" --target "$target" --addr "$SERVER_ADDR" \
                --server-pid "$PID" --json --quiet $(workload_args "$w") \
                >"$OUT/$s-$w-$round.json"; then
                log "round $round: $w against $s reported a failure"
            fi
            stop
        done
    done
    log "round $round of $ROUNDS done"
done

# Each figure by round; medians; the median of the per-round ratios to the
# first setup (the spread of each ratio in brackets).
first=${SETUPS%% *}
for w in $WORKLOADS; do
    case $w in
    latency) what="latency p99" q='.latency_ns.p99' fmt=ms ;;
    *) what="deliveries per server-CPU-second" q='.deliveries_per_cpu_s' fmt=si ;;
    esac
    echo "$w: $what"
    for s in $SETUPS; do
        vals=$(for r in $(seq 1 "$ROUNDS"); do
            jq -r "($q) // \"null\"" "$OUT/$s-$w-$r.json" 2>/dev/null || echo null
        done | paste -sd' ')
        ratios=$(for r in $(seq 1 "$ROUNDS"); do
            jq -rn --slurpfile a "$OUT/$first-$w-$r.json" --slurpfile b "$OUT/$s-$w-$r.json" \
                "(\$b[0] | $q) as \$y | (\$a[0] | $q) as \$x | if \$x and \$y then \$y / \$x else \"null\" end" \
                2>/dev/null || echo null
        done | paste -sd' ')
        jq -rn -L bench --arg fmt "$fmt" --arg s "$s" --arg first "$first" --arg vals "$vals" --arg ratios "$ratios" '
            include "summary";
            def nums: split(" ") | map(select(. != "null") | tonumber);
            def f: if $fmt == "ms" then ms else si end;
            ($vals | nums) as $v | ($ratios | nums) as $r |
            "  \($s): runs \($v | map(f) | join(", ")); median \($v | median | f)"
            + (if $s == $first or ($r | length) == 0 then ""
               else "; \($s)/\($first) per round \($r | map(. * 100 | round / 100) | join(", ")), median \($r | median | ratio)" end)'
    done
done | tee "$OUT/summary.txt"
