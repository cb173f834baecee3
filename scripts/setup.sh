#!/usr/bin/env bash
# Sets up skiff on a fresh Debian 12 machine (run as root) and shows it
# working: installs what is missing, builds skiff in release mode, installs it
# to /usr/local/bin, starts `skiff server` in the background (log in
# /var/log/skiff.log), waits until it is ready and applies the demo in
# examples/demo.yaml.
#
# Re-running it is safe: it rebuilds, restarts the server it started before
# (pid in /run/skiff.pid) and re-applies the demo.
#
# Environment:
#   SKIFF_DATA_DIR     data dir (default /var/lib/skiff)
#   SKIFF_PORT         HTTPS port (default 6443)
#   SKIFF_SERVER_ARGS  extra flags for `skiff server`, e.g.
#                      "--datastore-endpoint http://127.0.0.1:2379" for etcd
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

DATA_DIR="${SKIFF_DATA_DIR:-/var/lib/skiff}"
PORT="${SKIFF_PORT:-6443}"
LOG_FILE="${SKIFF_LOG:-/var/log/skiff.log}"
PID_FILE="${SKIFF_PID_FILE:-/run/skiff.pid}"
KUBECONFIG_FILE="$DATA_DIR/admin.kubeconfig"

[ "$(id -u)" -eq 0 ] || die "run this as root (it installs packages and starts a system service)"

ensure_debs
ensure_kubectl
ensure_rust
export_protoc

log "building skiff (release)"
cargo build --release --quiet -p skiff
target_dir="${CARGO_TARGET_DIR:-target}"
install -m 0755 "$target_dir/release/skiff" /usr/local/bin/skiff
log "installed $(/usr/local/bin/skiff --version 2>/dev/null || echo skiff) to /usr/local/bin/skiff"

if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    log "stopping the skiff server started before (pid $(cat "$PID_FILE"))"
    kill "$(cat "$PID_FILE")"
    for _ in $(seq 50); do
        kill -0 "$(cat "$PID_FILE")" 2>/dev/null || break
        sleep 0.2
    done
fi

log "starting skiff server (data dir $DATA_DIR, port $PORT, log $LOG_FILE)"
mkdir -p "$DATA_DIR" "$(dirname "$LOG_FILE")"
# shellcheck disable=SC2086 # SKIFF_SERVER_ARGS is a list of flags
nohup /usr/local/bin/skiff server --data-dir "$DATA_DIR" --https-port "$PORT" ${SKIFF_SERVER_ARGS:-} \
    >>"$LOG_FILE" 2>&1 </dev/null &
echo $! >"$PID_FILE"

export KUBECONFIG="$KUBECONFIG_FILE"
ready=""
for _ in $(seq 300); do
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        tail -n 30 "$LOG_FILE" >&2
        die "skiff server exited; see $LOG_FILE"
    fi
    if [ -f "$KUBECONFIG_FILE" ] && [ "$(kubectl get --raw /readyz 2>/dev/null)" = "ok" ]; then
        ready=yes
        break
    fi
    sleep 0.2
done
[ -n "$ready" ] || { tail -n 30 "$LOG_FILE" >&2; die "skiff server not ready after 60 s; see $LOG_FILE"; }
grep 'skiff is ready' "$LOG_FILE" | tail -n 1 >&2 || true

log "applying the demo (examples/demo.yaml)"
kubectl apply -f examples/demo.yaml
echo
log "kubectl get all -n demo"
kubectl get all -n demo
cat <<MSG

skiff is running (pid $(cat "$PID_FILE"), log $LOG_FILE).

Use it with the real kubectl:
  export KUBECONFIG=$KUBECONFIG_FILE
  kubectl get namespaces
  kubectl get deploy,svc,cm -n demo -o wide
  kubectl describe deployment web -n demo
(or copy $KUBECONFIG_FILE to ~/.kube/config)

Note: the API server and datastore work today; the demo's pods are not
started yet, because skiff's scheduler, controllers and node agent (which runs
containers through containerd) are later milestones. Until then the
deployment shows READY 0/2.

Stop the server: kill \$(cat $PID_FILE)
MSG
