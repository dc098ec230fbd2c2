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

# --- starting servers (run.sh, ab.sh) --------------------------------------------

free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    echo "no free port found" >&2
    return 1
}

wait_listening() { # addr
    local host=${1%:*} port=${1##*:}
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    log "server at $1 did not start"
    return 1
}

# True when *our* redis answers on $1: PING gets +PONG.
redis_ping() { # port
    local reply=""
    exec 4<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'PING\r\n' >&4
    read -r -t 2 reply <&4 || true
    exec 4>&-
    [[ $reply == +PONG* ]]
}

# The address a server under valgrind logs ("listening on ..."), waiting
# up to 60 s (valgrind starts it slowly) while its process lives; prints it,
# or nothing if it did not start.
valgrind_addr() { # log-file pid
    local addr=""
    for _ in $(seq 1 600); do
        addr=$(sed -n 's/^listening on //p' "$1" | head -n1)
        [ -n "$addr" ] && break
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    echo "$addr"
}

# Wait up to 10 s for the server to log its address; set SERVER_ADDR.
addr_from_log() { # log-file sed-expression
    SERVER_ADDR=""
    for _ in $(seq 1 200); do
        # The server may not have opened its log yet.
        SERVER_ADDR=$(sed -n "$2" "$1" 2>/dev/null | head -n 1 || true)
        [ -n "$SERVER_ADDR" ] && return 0
        sleep 0.05
    done
    log "the server did not log where it listens ($1)"
    return 1
}
