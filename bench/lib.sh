# bench/lib.sh: what the bench/*.sh scripts share.
# Sourced from the repository's root, after the caller defines `log`.

# The release binaries: built first unless BUILD=0; sets BENCH and
# CHATSERVER (under $CARGO_TARGET_DIR, or target/).
release_binaries() {
    if [ "${BUILD:-1}" = 1 ]; then
        log "building release binaries"
        cargo build --release -p chatserver -p chatbench
    fi
    local dir=${CARGO_TARGET_DIR:-target}
    BENCH=$dir/release/chatbench
    CHATSERVER=$dir/release/chatserver
    command -v jq >/dev/null || { log "needs jq for the summary (apt-get install jq)"; exit 1; }
}

# Stop a process this script started, by its PID: SIGTERM, up to 5 s to
# finish, then SIGKILL; reap it.
stop_pid() {
    kill "$1" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
