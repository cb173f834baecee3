#!/usr/bin/env bash
# Scheduling throughput benchmark of skiff at scale.
#
# Builds `skiff` and `skiff-bench` in release mode (unless SKIP_BUILD=1),
# starts `skiff server` (SQLite, scheduler and controllers in-process, no node
# agent, --cluster-cidr 10.0.0.0/8 so 5,000 nodes get a /24 each) on a
# free loopback port with a temporary data dir, then runs
# `skiff-bench scheduler`, which registers NODES simulated nodes in its own
# process (skiff-simnodes library, Leases renewed every LEASE_PERIOD s),
# creates PODS pods at CONCURRENCY and measures first create -> last binding
# on a watch, the spread of pods over nodes, the server's RSS and its own
# (simulated nodes + client) RSS. Stops everything it started.
# Results go to $OUT (default target/bench-scheduler/<UTC time>/).
#
# Usage: bench/run-scheduler.sh [extra skiff-bench scheduler flags...]
# Environment: NODES (1000), PODS (10000), CONCURRENCY (128), LEASE_PERIOD (10),
#   GRACE (node-monitor-grace-period, s; 40 like upstream), SKIP_BUILD=1,
#   SKIFF/BENCH=binaries, OUT=dir, KEEP_DATA=1, SERVER_FLAGS (extra server flags).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODES=${NODES:-1000}
PODS=${PODS:-10000}
CONCURRENCY=${CONCURRENCY:-128}
LEASE_PERIOD=${LEASE_PERIOD:-10}
GRACE=${GRACE:-40}
OUT=${OUT:-$ROOT/target/bench-scheduler/$(date -u +%Y%m%dT%H%M%SZ)-${NODES}n-${PODS}p}
SKIFF=${SKIFF:-$ROOT/target/release/skiff}
BENCH=${BENCH:-$ROOT/target/release/skiff-bench}
SERVER_FLAGS=${SERVER_FLAGS:-}

WORK=$(mktemp -d /tmp/skiff-bench-sched.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -z ${KEEP_DATA:-} ]]; then rm -rf "$WORK"; else echo "data kept in $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "[run-scheduler] $*" >&2; }

free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 40000))
        if [[ -z $(ss -Htln "sport = :$port") ]]; then
            echo "$port"
            return 0
        fi
    done
    log "no free port found"
    return 1
}

if [[ -z ${SKIP_BUILD:-} ]]; then
    log "building skiff and skiff-bench (release)"
    (cd "$ROOT" && cargo build --release -p skiff -p skiff-bench)
fi
mkdir -p "$OUT"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "nproc: $(nproc)"
    echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
    echo "memory: $(free -g | awk '/^Mem:/ { print $2 " GiB" }')"
    echo "load average before: $(cut -d" " -f1-3 /proc/loadavg)"
    echo "nodes: $NODES pods: $PODS concurrency: $CONCURRENCY lease period: ${LEASE_PERIOD}s grace: ${GRACE}s"
    echo "extra bench args: $*"
} | tee "$OUT/machine.txt" >&2

port=$(free_port)
data=$WORK/data
mkdir -p "$data"
log "starting skiff server on 127.0.0.1:$port"
# shellcheck disable=SC2086 # SERVER_FLAGS is a list of flags
"$SKIFF" server --data-dir "$data" --https-port "$port" --bind-address 127.0.0.1 \
    --node-monitor-grace-period "$GRACE" --cluster-cidr 10.0.0.0/8 --disable-agent $SERVER_FLAGS >"$OUT/server.log" 2>&1 &
pid=$!
PIDS+=("$pid")
for _ in $(seq 1 6000); do
    grep -qs "skiff is ready" "$OUT/server.log" && break
    if ! kill -0 "$pid" 2>/dev/null; then
        log "server exited:"
        cat "$OUT/server.log" >&2
        exit 1
    fi
    sleep 0.01
done
status=0
"$BENCH" scheduler --kubeconfig "$data/admin.kubeconfig" --server-pid "$pid" \
    --nodes "$NODES" --pods "$PODS" --concurrency "$CONCURRENCY" --lease-period "$LEASE_PERIOD" \
    --keep "$@" | tee "$OUT/result.txt" || status=$?
echo "load average after: $(cut -d" " -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2
log "results in $OUT"
exit "$status"
