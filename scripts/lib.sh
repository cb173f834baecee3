# Shared helpers for scripts/setup.sh and scripts/test.sh (sourced, not run).
# Installs what skiff needs on Debian 12, idempotently: nothing is downloaded
# when everything is already there.

# Debian packages skiff builds and runs with:
#   containerd runc containernetworking-plugins  the container runtime and pod network (node agent)
#   etcd-server                                   the etcd backend and its tests
#   busybox-static jq                             local images (nothing can be pulled)
#   protobuf-compiler                             protoc, for the etcd/CRI gRPC crates
#   nftables iproute2                             service proxy and pod networking
#   build-essential pkg-config curl ca-certificates  building
SKIFF_DEBS=(containerd runc containernetworking-plugins etcd-server busybox-static jq protobuf-compiler
    nftables iproute2 curl build-essential pkg-config ca-certificates)

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the packages of SKIFF_DEBS that are missing (apt-get, as root).
ensure_debs() {
    local missing=()
    local pkg
    for pkg in "${SKIFF_DEBS[@]}" "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        warn "missing Debian packages (run as root to install them): ${missing[*]}"
        return 0
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Makes `cargo` available: the one on PATH, ~/.cargo/bin, or a fresh rustup install.
ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if command -v cargo >/dev/null 2>&1; then
        return 0
    fi
    log "cargo not found: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal \
        --component clippy,rustfmt >/dev/null
    export PATH="$HOME/.cargo/bin:$PATH"
}

# Fails with instructions when kubectl (v1.32 or newer) is missing.
ensure_kubectl() {
    if command -v kubectl >/dev/null 2>&1; then
        return 0
    fi
    die "kubectl not found. Debian 12 does not package it: install kubectl v1.32+ from the Kubernetes
       project's apt repository (Kubernetes docs: 'Install and Set Up kubectl on Linux'), or copy a
       kubectl binary to /usr/bin/kubectl, then run this again."
}

# protoc for the gRPC code generators of etcd-client (and later CRI).
export_protoc() {
    if [ -z "${PROTOC:-}" ] && [ -x /usr/bin/protoc ]; then
        export PROTOC=/usr/bin/protoc
    fi
}
