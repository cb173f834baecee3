#!/usr/bin/env bash
# API load benchmark of skiff on both backends.
#
# Builds `skiff` and `skiff-bench` in release mode, then for each backend
# (embedded SQLite; Debian's etcd started here on free loopback ports):
# starts `skiff server` with a temporary data dir on a free loopback port,
# measures the time from exec to its `skiff is ready` log line, runs
# `skiff-bench api-load` against its admin kubeconfig with --server-pid, and
# stops everything it started. Results (table, JSON, server logs) go to
# $OUT (default target/bench-api/<UTC time>/).
#
# Usage: bench/run-api.sh [skiff-bench api-load flags...]
#   e.g. bench/run-api.sh --pods 2000 --list-runs 20
# Environment: BACKENDS="sqlite etcd" (subset to run), SKIFF/BENCH=binaries,
#   SKIP_BUILD=1 (reuse target/release binaries), ETCD=/usr/bin/etcd, OUT=dir, KEEP_DATA=1,
#   SERVER_FLAGS (default: --disable-scheduler --disable-controllers).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BACKENDS=${BACKENDS:-"sqlite etcd"}
ETCD=${ETCD:-/usr/bin/etcd}
OUT=${OUT:-$ROOT/target/bench-api/$(date -u +%Y%m%dT%H%M%SZ)}
SKIFF=${SKIFF:-$ROOT/target/release/skiff}
BENCH=${BENCH:-$ROOT/target/release/skiff-bench}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-60}
# The API server alone, as the upstream reference measured kube-apiserver:
# without this the in-process scheduler would post a FailedScheduling
# status and event for every one of the (node-less) benchmark pods.
SERVER_FLAGS=${SERVER_FLAGS:---disable-scheduler --disable-controllers}

WORK=$(mktemp -d /tmp/skiff-bench-api.XXXXXX)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -z ${KEEP_DATA:-} ]]; then rm -rf "$WORK"; else echo "data kept in $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[run-api] $*" >&2; }

# A TCP port on 127.0.0.1 that nothing listens on.
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

now_ns() { date +%s%N; }

# VmRSS of a process in MiB, or "-".
rss_mib() {
    awk '/^VmRSS:/ { printf "%.1f", $2 / 1024; found = 1 } END { if (!found) print "-" }' \
        "/proc/$1/status" 2>/dev/null || echo "-"
}

stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
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
    echo "kernel: $(uname -r)"
    echo "load average before: $(cut -d" " -f1-3 /proc/loadavg)"
    echo "etcd: $("$ETCD" --version 2>/dev/null | head -1)"
    echo "bench args: $*"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# run_backend NAME [skiff server flags...]
run_backend() {
    local name=$1
    shift
    local data=$WORK/$name port start ready_ms pid
    port=$(free_port)
    mkdir -p "$data"
    log "$name: starting skiff server on 127.0.0.1:$port"
    start=$(now_ns)
    # shellcheck disable=SC2086 # SERVER_FLAGS is a list of flags
    "$SKIFF" server --data-dir "$data" --https-port "$port" --bind-address 127.0.0.1 $SERVER_FLAGS "$@" \
        >"$OUT/$name-server.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    until grep -qs "skiff is ready" "$OUT/$name-server.log"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name: server exited before it was ready:"
            cat "$OUT/$name-server.log" >&2
            return 1
        fi
        if (($(now_ns) - start > READY_TIMEOUT_S * 1000000000)); then
            log "$name: not ready after ${READY_TIMEOUT_S}s"
            tail -20 "$OUT/$name-server.log" >&2
            stop_pid "$pid"
            return 1
        fi
        sleep 0.005
    done
    ready_ms=$((($(now_ns) - start) / 1000000))
    log "$name: ready after ${ready_ms} ms (exec to 'skiff is ready' line); idle RSS $(rss_mib "$pid") MiB"
    echo "$ready_ms" >"$OUT/$name-ready-ms.txt"
    # Let start-up work settle before the idle memory sample.
    sleep 2
    local status=0
    "$BENCH" api-load --kubeconfig "$data/admin.kubeconfig" --server-pid "$pid" \
        --json-file "$OUT/$name.json" "${BENCH_ARGS[@]}" | tee "$OUT/$name.txt" || status=$?
    stop_pid "$pid"
    return "$status"
}

BENCH_ARGS=("$@")
failed=0
for backend in $BACKENDS; do
    case $backend in
    sqlite)
        run_backend sqlite || failed=1
        ;;
    etcd)
        client_port=$(free_port)
        peer_port=$(free_port)
        log "etcd: starting $ETCD on 127.0.0.1:$client_port"
        "$ETCD" --name bench --data-dir "$WORK/etcd-data" \
            --listen-client-urls "http://127.0.0.1:$client_port" \
            --advertise-client-urls "http://127.0.0.1:$client_port" \
            --listen-peer-urls "http://127.0.0.1:$peer_port" \
            --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
            --initial-cluster "bench=http://127.0.0.1:$peer_port" \
            --initial-cluster-state new >"$OUT/etcd.log" 2>&1 &
        etcd_pid=$!
        PIDS+=("$etcd_pid")
        for _ in $(seq 1 200); do
            curl -fsS "http://127.0.0.1:$client_port/health" >/dev/null 2>&1 && break
            sleep 0.05
        done
        echo "$(rss_mib "$etcd_pid")" >"$OUT/etcd-rss-idle-mib.txt"
        run_backend etcd --datastore-endpoint "http://127.0.0.1:$client_port" || failed=1
        echo "$(rss_mib "$etcd_pid")" >"$OUT/etcd-rss-after-mib.txt"
        log "etcd RSS: idle $(cat "$OUT/etcd-rss-idle-mib.txt") MiB, after the run $(cat "$OUT/etcd-rss-after-mib.txt") MiB"
        stop_pid "$etcd_pid"
        ;;
    *)
        log "unknown backend $backend (sqlite, etcd)"
        failed=1
        ;;
    esac
done

# One line per backend, from the JSON reports.
if command -v jq >/dev/null; then
    {
        printf '\n%-8s %8s %10s %10s %10s %10s %10s %10s %10s %10s\n' backend ready_ms \
            c1_per_s c32_per_s c32_p99 list0_p50 listc_p50 watch8_p99 rss_idle rss_10k
        for backend in $BACKENDS; do
            [[ -f $OUT/$backend.json ]] || continue
            jq -r --arg b "$backend" --arg r "$(cat "$OUT/$backend-ready-ms.txt" 2>/dev/null || echo -)" '
                def f: if . == null then "-" else (. * 10 | round / 10 | tostring) end;
                def mib: if . == null then null else . / 1024 end;
                def c(n): ([.create[] | select(.concurrency == n)] | first // {});
                def l(m): ([.list[] | select(.mode == m)] | first // {});
                def w(n): ([.watch[] | select(.writers == n)] | first // {});
                [$b, $r,
                 (c(1).per_sec | f), (c(32).per_sec | f), (c(32).latency.p99_ms | f),
                 (l("rv0").latency.p50_ms | f), (l("consistent").latency.p50_ms | f),
                 (w(8).latency.p99_ms | f),
                 (.memory.idle.rss_kib | mib | f), (.memory.loaded.rss_kib | mib | f)] | @tsv' \
                "$OUT/$backend.json" | awk -F'\t' '{ printf "%-8s %8s %10s %10s %10s %10s %10s %10s %10s %10s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
        done
        echo "(ms and MiB; full tables in $OUT/<backend>.txt)"
    } | tee "$OUT/summary.txt"
fi
log "results in $OUT"
exit "$failed"
