#!/usr/bin/env bash
# Renders scripts/containerd/config.toml for one skiff-managed containerd
# whose files all live under DIR, and prints the rendered config's path:
#   DIR/config.toml  the configuration
#   DIR/root         containerd's root (images, snapshots)
#   DIR/state        containerd's state
#   DIR/containerd.sock  its gRPC socket (CRI endpoint unix://DIR/containerd.sock)
#   DIR/cni          CNI config directory (override with CNI_CONF_DIR)
# SANDBOX_IMAGE overrides the pause image (default skiff.local/pause:3.9).
#
# Usage: scripts/containerd/render.sh DIR
#   then: containerd --config "$(scripts/containerd/render.sh DIR)"
set -euo pipefail

[ "$#" -eq 1 ] || { printf 'usage: %s DIR\n' "$0" >&2; exit 2; }
mkdir -p "$1"
dir="$(cd "$1" && pwd)"
template="$(dirname "$0")/config.toml"
cni="${CNI_CONF_DIR:-$dir/cni}"
sandbox="${SANDBOX_IMAGE:-skiff.local/pause:3.9}"
# unix socket paths are limited to 107 bytes.
sock="$dir/containerd.sock"
if [ "${#sock}" -gt 100 ]; then
    printf 'error: socket path %s is too long for a unix socket\n' "$sock" >&2
    exit 1
fi
for value in "$dir" "$cni" "$sandbox"; do
    case "$value" in *[\|\"\\]*)
        printf 'error: %s contains a character the config cannot hold\n' "$value" >&2
        exit 1 ;;
    esac
done
mkdir -p "$dir/root" "$dir/state" "$cni"
sed -e "s|@ROOT@|$dir/root|g" -e "s|@STATE@|$dir/state|g" -e "s|@ADDRESS@|$sock|g" \
    -e "s|@CNI_CONF_DIR@|$cni|g" -e "s|@SANDBOX_IMAGE@|$sandbox|g" "$template" >"$dir/config.toml"
printf '%s\n' "$dir/config.toml"
