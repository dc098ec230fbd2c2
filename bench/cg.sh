#!/usr/bin/env bash
# bench/cg.sh: count the instructions one chatserver run executes, under
# valgrind's callgrind (user space only; repeatable to about 0.1% between
# runs on a busy machine, where timed runs spread by +-15%). For changes
# too small for bench/run.sh to resolve. See BENCHMARKS.md, "Event
# strings escaped eight bytes at a time".
#
#   bench/cg.sh private|fanout OUTFILE [chatserver args, e.g. --store memory]
#
# The server runs on one thread (`--threads 1`) under callgrind, pinned to
# $SERVER_CORE; chatbench on $GEN_CORE. Prints the total instruction count
# (`Ir`); OUTFILE keeps the profile for callgrind_annotate. Startup is in
# the count (about 1 M instructions).
#
# Knobs (environment): PRIVATE_MESSAGES=1000 (per client, 100 clients)
#   FANOUT_MESSAGES=2000 (per publisher, 4 publishers)  FANOUT_MEMBERS=100
#   SERVER_CORE=1 GEN_CORE=0  BUILD=1 (0: use the release binaries there are)
#   CHATSERVER=path (another build to count, such as a copy of an older one)
set -euo pipefail
# Paths the caller gave are the caller's: resolve them before leaving.
here=$PWD
abs() { case $1 in /*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
cd "$(dirname "$0")/.."
log() { echo "cg.sh: $*" >&2; }
# shellcheck source=bench/lib.sh
. bench/lib.sh

W=${1:?private or fanout}
F=$(abs "${2:?output file}")
shift 2
case $W in private|fanout) ;; *) log "unknown workload $W (private or fanout)"; exit 1 ;; esac
command -v valgrind >/dev/null || { log "needs valgrind (apt-get install valgrind)"; exit 1; }
SERVER=${CHATSERVER:+$(abs "$CHATSERVER")}
release_binaries
SERVER=${SERVER:-$CHATSERVER}
SERVER_CORE=${SERVER_CORE:-1}
GEN_CORE=${GEN_CORE:-0}
dir=$(mktemp -d)
pid=""
trap '[ -z "$pid" ] || stop_pid "$pid"; rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM
# A profile left from an earlier run must not be read as this one's.
rm -f "$F"
taskset -c "$SERVER_CORE" valgrind --tool=callgrind --callgrind-out-file="$F" "$SERVER" \
    --listen 127.0.0.1:0 --log-level warn --rate 0 --max-clients 20000 \
    --max-clients-per-ip 0 --threads 1 --data-dir "$dir/data" "$@" >"$dir/server.log" 2>&1 &
pid=$!
addr=$(valgrind_addr "$dir/server.log" "$pid")
[ -n "$addr" ] || { log "the server did not start:"; cat "$dir/server.log" >&2; exit 1; }
case $W in
    private) args=(private --clients 100 --messages "${PRIVATE_MESSAGES:-1000}" --window 16 --size 64) ;;
    fanout) args=(fanout --members "${FANOUT_MEMBERS:-100}" --publishers 4 --messages "${FANOUT_MESSAGES:-2000}" --window 64 --size 64 --end-to-end --ack-every 16) ;;
esac
if ! taskset -c "$GEN_CORE" "$BENCH" --addr "$addr" --json --quiet --seed 7 "${args[@]}" >"$dir/report.json"; then
    log "chatbench failed; no count"
    exit 1
fi
# callgrind writes its profile when the server exits: SIGTERM, then up to
# 60 s (under valgrind, and with SQLite, shutting down is slow).
kill "$pid"
for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
stop_pid "$pid"
pid=""
total=$(awk '/^(totals|summary):/ {print $2; exit}' "$F" 2>/dev/null || true)
[ -n "$total" ] || { log "no total in $F: the server did not finish its profile"; exit 1; }
messages=$(jq -e .messages "$dir/report.json") || { log "no report"; exit 1; }
echo "$(basename "$SERVER") $W instructions=$total messages=$messages"
