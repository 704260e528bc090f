#!/usr/bin/env bash
# Start, stop or show the local backing services: Redis (the job store and the
# worker's trigger) and Azurite (the Azure Blob Storage emulator).
#
#   scripts/services.sh start|stop|status
#
# Ports come from REDIS_PORT (6379) and AZURITE_PORT (10000). Data lives under
# .local/. A Redis or Azurite already answering on its port is reused and left
# running by `stop`; only what this script started is stopped.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

run_dir="$LOCAL_DIR/run"
mkdir -p "$run_dir"

redis_ok() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -qx PONG; }
azurite_ok() {
    curl -s -o /dev/null -D - --max-time 2 "http://127.0.0.1:$AZURITE_PORT/devstoreaccount1?comp=list" 2>/dev/null |
        grep -qi '^server: azurite'
}

start_redis() {
    if redis_ok; then
        echo "redis: already answering on 127.0.0.1:$REDIS_PORT (reused)"
        return
    fi
    port_open "$REDIS_PORT" && die "port $REDIS_PORT is taken by something that is not Redis; set REDIS_PORT"
    command -v redis-server >/dev/null 2>&1 || die "redis-server not found: run scripts/bootstrap.sh"
    mkdir -p "$LOCAL_DIR/redis"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save '' --appendonly no \
        --dir "$LOCAL_DIR/redis" --pidfile "$run_dir/redis.pid" --logfile "$LOCAL_DIR/redis/redis.log"
    wait_port "$REDIS_PORT" 10 || die "redis did not start: see $LOCAL_DIR/redis/redis.log"
    echo "redis: started on 127.0.0.1:$REDIS_PORT"
}

start_azurite() {
    if azurite_ok; then
        echo "azurite: already answering on 127.0.0.1:$AZURITE_PORT (reused)"
        return
    fi
    port_open "$AZURITE_PORT" && die "port $AZURITE_PORT is taken by something that is not Azurite; set AZURITE_PORT"
    local bin="$TOOLS_DIR/azurite/node_modules/.bin/azurite-blob"
    [ -x "$bin" ] || die "azurite not found: run scripts/bootstrap.sh"
    mkdir -p "$LOCAL_DIR/azurite"
    nohup "$bin" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" --location "$LOCAL_DIR/azurite" \
        --skipApiVersionCheck --disableTelemetry --silent >"$LOCAL_DIR/azurite/azurite.log" 2>&1 &
    echo $! >"$run_dir/azurite.pid"
    wait_port "$AZURITE_PORT" 30 || die "azurite did not start: see $LOCAL_DIR/azurite/azurite.log"
    echo "azurite: started on 127.0.0.1:$AZURITE_PORT"
}

stop_pidfile() {
    local name="$1" file="$run_dir/$1.pid"
    [ -f "$file" ] || return 0
    local pid
    pid="$(cat "$file")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        echo "$name: stopped"
    fi
    rm -f "$file"
}

case "${1:-}" in
start)
    start_redis
    start_azurite
    ;;
stop)
    stop_pidfile azurite
    stop_pidfile redis
    ;;
status)
    if redis_ok; then echo "redis: up on 127.0.0.1:$REDIS_PORT"; else echo "redis: down"; fi
    if azurite_ok; then echo "azurite: up on 127.0.0.1:$AZURITE_PORT"; else echo "azurite: down"; fi
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
