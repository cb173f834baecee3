#!/usr/bin/env bash
# Sets up a one-machine skiff cluster on a fresh Debian 12 machine (run as
# root) and shows it working:
#   1. installs what is missing (Debian packages: containerd runc
#      containernetworking-plugins etcd-server busybox-static
#      protobuf-compiler nftables jq ...; Rust via rustup if there is no cargo);
#   2. builds skiff in release mode and installs it to /usr/local/bin/skiff;
#   3. builds the local images (nothing can be pulled on an air-gapped
#      machine) into DATA_DIR/agent/images, which the agent imports at start:
#      skiff.local/busybox:1 (also docker.io/library/busybox:latest) and the
#      sandbox image skiff.local/pause:3.9;
#   4. starts `skiff server` in the background (log in /var/log/skiff.log):
#      API server, scheduler, controllers and the node agent, which runs a
#      containerd of its own (socket DATA_DIR/containerd/containerd.sock);
#   5. waits until the node is Ready, deploys the demo (examples/demo.yaml:
#      a busybox httpd Deployment with 2 replicas and a Service), checks that
#      the Service answers from a pod by name (cluster DNS) and ClusterIP
#      (service proxy), and prints kubectl commands to try.
#
# containerd: skiff always runs its own containerd (own socket, root and
# state under DATA_DIR/containerd), even when the system's containerd is
# running: the system one usually lacks `restrict_oom_score_adj` (needed where
# CAP_SYS_RESOURCE is missing) and the local pause image, and skiff's pods
# then fail. To use another CRI runtime anyway, pass
# SKIFF_SERVER_ARGS="--container-runtime-endpoint /run/containerd/containerd.sock"
# (its CNI conf dir is then /etc/cni/net.d).
#
# Re-running it is safe: it rebuilds, restarts the server it started before
# (pid in /run/skiff.pid; running pods are adopted, not restarted) and
# re-applies the demo.
#
# Environment:
#   SKIFF_DATA_DIR     data dir (default /var/lib/skiff)
#   SKIFF_PORT         HTTPS port (default 6443)
#   SKIFF_LOG          server log (default /var/log/skiff.log)
#   SKIFF_SERVER_ARGS  extra flags for `skiff server`, e.g.
#                      "--datastore-endpoint http://127.0.0.1:2379" for etcd
#   SKIFF_NO_DEMO=1    do not deploy the demo
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

DATA_DIR="${SKIFF_DATA_DIR:-/var/lib/skiff}"
PORT="${SKIFF_PORT:-6443}"
LOG_FILE="${SKIFF_LOG:-/var/log/skiff.log}"
PID_FILE="${SKIFF_PID_FILE:-/run/skiff.pid}"
KUBECONFIG_FILE="$DATA_DIR/admin.kubeconfig"

[ "$(id -u)" -eq 0 ] || die "run this as root (it installs packages and runs containers)"

ensure_debs
ensure_kubectl
ensure_rust
export_protoc

log "building skiff (release; the first build takes several minutes)"
cargo build --release --quiet -p skiff
target_dir="${CARGO_TARGET_DIR:-target}"
install -m 0755 "$target_dir/release/skiff" /usr/local/bin/skiff
log "installed $(/usr/local/bin/skiff --version 2>/dev/null || echo skiff) to /usr/local/bin/skiff"

log "building the local images into $DATA_DIR/agent/images"
mkdir -p "$DATA_DIR/agent/images"
scripts/build-images.sh "$DATA_DIR/agent/images"

if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    log "stopping the skiff server started before (pid $(cat "$PID_FILE"))"
    kill "$(cat "$PID_FILE")"
    for _ in $(seq 100); do
        kill -0 "$(cat "$PID_FILE")" 2>/dev/null || break
        sleep 0.2
    done
    kill -0 "$(cat "$PID_FILE")" 2>/dev/null && die "the old server (pid $(cat "$PID_FILE")) did not stop"
fi

log "starting skiff server (data dir $DATA_DIR, port $PORT, log $LOG_FILE)"
mkdir -p "$DATA_DIR" "$(dirname "$LOG_FILE")"
# shellcheck disable=SC2086 # SKIFF_SERVER_ARGS is a list of flags
nohup /usr/local/bin/skiff server --data-dir "$DATA_DIR" --https-port "$PORT" ${SKIFF_SERVER_ARGS:-} \
    >>"$LOG_FILE" 2>&1 </dev/null &
echo $! >"$PID_FILE"

export KUBECONFIG="$KUBECONFIG_FILE"
alive() {
    kill -0 "$(cat "$PID_FILE")" 2>/dev/null || {
        tail -n 30 "$LOG_FILE" >&2
        die "skiff server exited; see $LOG_FILE"
    }
}
ready=""
for _ in $(seq 300); do
    alive
    if [ -f "$KUBECONFIG_FILE" ] && [ "$(kubectl get --raw /readyz 2>/dev/null)" = "ok" ]; then
        ready=yes
        break
    fi
    sleep 0.2
done
[ -n "$ready" ] || { tail -n 30 "$LOG_FILE" >&2; die "skiff server not ready after 60 s; see $LOG_FILE"; }

log "waiting for the node to be Ready"
node_ready=""
for _ in $(seq 120); do
    alive
    if kubectl get nodes --no-headers 2>/dev/null | awk '$2 == "Ready" {found=1} END {exit !found}'; then
        node_ready=yes
        break
    fi
    sleep 0.5
done
[ -n "$node_ready" ] || { tail -n 30 "$LOG_FILE" >&2; die "no Ready node after 60 s; see $LOG_FILE"; }
kubectl get nodes -o wide

if [ -z "${SKIFF_NO_DEMO:-}" ]; then
    log "deploying the demo (examples/demo.yaml)"
    kubectl apply -f examples/demo.yaml
    kubectl rollout status deployment/web -n demo --timeout=120s ||
        warn "the demo is not ready yet: kubectl get pods -n demo; kubectl describe pods -n demo"
    echo
    kubectl get pods -n demo -o wide
    log "checking the Service from a pod: http://web.demo (cluster DNS + service proxy)"
    svc_ok=""
    for _ in $(seq 20); do
        if kubectl exec -n demo deployment/web -- timeout 3 wget -qO- http://web.demo/ >/dev/null 2>&1; then
            svc_ok=yes
            break
        fi
        sleep 1
    done
    [ -n "$svc_ok" ] || warn "the Service web.demo does not answer from a pod yet; see $LOG_FILE"
fi

pod_ip="$(kubectl get pods -n demo -l app=web -o jsonpath='{.items[0].status.podIP}' 2>/dev/null || true)"
svc_ip="$(kubectl get service web -n demo -o jsonpath='{.spec.clusterIP}' 2>/dev/null || true)"
cat <<MSG

skiff is running (pid $(cat "$PID_FILE"), log $LOG_FILE): a one-machine cluster.

Use it with the real kubectl:
  export KUBECONFIG=$KUBECONFIG_FILE
  kubectl get nodes -o wide
  kubectl get pods -n demo -o wide
  kubectl logs -n demo deployment/web
  kubectl exec -n demo deployment/web -- wget -qO- http://127.0.0.1:8080/
  kubectl exec -n demo deployment/web -- wget -qO- http://web.demo/        # the Service by name
  kubectl exec -n demo deployment/web -- wget -qO- http://${svc_ip:-CLUSTER_IP}/   # ... by ClusterIP
  curl http://${pod_ip:-POD_IP}:8080/            # pod IPs answer from this machine
  kubectl run hello --image=skiff.local/busybox:1 --restart=Never -- echo hello; kubectl logs hello
Images (nothing is pulled on an air-gapped machine): put docker-archive/OCI tarballs in
$DATA_DIR/agent/images (imported at every start), or load one now:
  skiff image import FILE.tar

Stop the server: kill \$(cat $PID_FILE)   (pods keep running and are adopted at the next start)
Remove skiff's network setup (nftables tables, routes, bridge skiff0) after stopping: skiff cleanup
Run the test suite: scripts/test.sh
MSG
