#!/usr/bin/env bash
# Pod start latency on this machine (root, containerd/runc/CNI installed,
# images built by scripts/build-images.sh into target/skiff-e2e-images or
# IMAGES=DIR): `skiff server --disable-agent` plus `skiff agent` as its own
# process (so its RSS is the agent's alone; the agent runs its own containerd
# under DATA_DIR/containerd), then `skiff-bench pod-start` with the CRI floor
# on that containerd. Everything is stopped at the end; pods are deleted first.
#
# Usage: bench/run-pod-start.sh [extra skiff-bench pod-start flags]
# Env: BIN (dir with release skiff and skiff-bench, default target/release),
#      D (data dir, default /tmp/skiff-bench-pod-start), PODS (pods created one
#      by one, default 50), BURST (pods created at once, agent and CRI floor
#      alike, default PODS).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/target/release}
D=${D:-/tmp/skiff-bench-pod-start}
PODS=${PODS:-50}
BURST=${BURST:-$PODS}
IMAGES=${IMAGES:-$PWD/target/skiff-e2e-images}
[ -f "$IMAGES/busybox.tar" ] || scripts/build-images.sh "$IMAGES"
rm -rf "$D"
mkdir -p "$D/agent/images"
cp "$IMAGES"/*.tar "$D/agent/images/"
"$BIN/skiff" server --data-dir "$D" --https-port 17444 --bind-address 127.0.0.1 --disable-agent \
    --cluster-cidr 10.252.0.0/16 --log-level warn >"$D/server.log" 2>&1 &
SERVER=$!
export KUBECONFIG=$D/admin.kubeconfig
for _ in $(seq 100); do
    [ -f "$KUBECONFIG" ] && [ "$(kubectl get --raw /readyz 2>/dev/null)" = ok ] && break
    sleep 0.2
done
"$BIN/skiff" agent --server https://127.0.0.1:17444 --token "$(cat "$D/token")" --data-dir "$D" \
    --node-name bench-node --node-api-port 20252 --cni-bridge skbench1 --log-level warn >"$D/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 100); do
    kubectl get nodes --no-headers 2>/dev/null | grep -q " Ready" && break
    sleep 0.5
done
"$BIN/skiff-bench" pod-start --kubeconfig "$KUBECONFIG" --pods "$PODS" --burst "$BURST" --agent-pid "$AGENT" \
    --cri-socket "$D/containerd/containerd.sock" "$@" || true
# The benchmark deleted its namespace: let the agent remove the pods (and
# containerd their sandboxes) before it stops.
for _ in $(seq 240); do
    if ! kubectl get namespaces --no-headers 2>/dev/null | grep -q '^bench-start-' &&
        [ -z "$(ctr --address "$D/containerd/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null)" ]; then
        break
    fi
    sleep 0.5
done
kill "$AGENT"
sleep 3
kill "$SERVER" || true
# The agent's service proxy and pod routes put nftables tables on the host:
# remove them and the bridge (`skiff cleanup` touches nothing else).
"$BIN/skiff" cleanup --cni-bridge skbench1 >/dev/null 2>&1 || ip link del skbench1 2>/dev/null || true
# Volumes of pods whose clean-up had not finished when the agent stopped
# (kube-api-access tmpfs mounts) would pin the data dir: unmount them.
awk '{ print $5 }' /proc/self/mountinfo | grep "^$D/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
