#!/usr/bin/env bash
# Builds skiff's local container images without any network access, as
# OCI image-layout tarballs that `ctr -n k8s.io images import` (and skiff's
# air-gap image import) load:
#
#   OUTDIR/busybox.tar  docker.io/library/busybox:latest and skiff.local/busybox:1
#                       (Debian's busybox-static: /bin/busybox and a symlink
#                       for every applet: sh, httpd, wget, nc, sleep, cat, ...;
#                       /bin/wget is a small wrapper, see below)
#   OUTDIR/pause.tar    skiff.local/pause:3.9, containerd's sandbox image
#
# The pause image is busybox's shell running
#   trap 'exit 0' TERM INT; while :; do sleep 2147483647 & wait $!; done
# as PID 1: a process that does nothing until signalled and exits 0 on
# SIGTERM/SIGINT. PID 1 of a PID namespace gets no default signal
# handlers, so a bare `sleep infinity` would ignore SIGTERM and only die
# from SIGKILL after the stop timeout; the trap makes stopping immediate.
# No C compiler is needed this way.
#
# Names resolve in both images without any NSS module: glibc 2.34 and later
# has the `files` and `dns` NSS services built into libc, static binaries
# included, and /etc/nsswitch.conf says `hosts: files dns` (the container
# runtime mounts /etc/hosts and /etc/resolv.conf). What did crash is
# `wget -T N`: Debian's busybox (before 1.36.1-5) is built without
# FEATURE_WGET_TIMEOUT, yet its option string still has `T:+` (a number)
# with no place to store it, so getopt32 writes -T's value through a NULL
# pointer. Two fixes, both offline and deterministic:
#   - the copy of busybox in the images has `T:+` turned into `T:` in
#     wget's option string (a string option with no place to store it is
#     skipped by getopt32): -T is accepted and ignored instead of crashing.
#     Applied only when that exact option string is found once (Debian's
#     1.35 build); other busybox binaries are copied as they are.
#   - /bin/wget is a shell wrapper that takes -T N off the command line and
#     runs `busybox timeout N busybox wget ...`, so an exec'd `wget -T N`
#     (kubectl exec, a container command) really times out. busybox sh runs
#     its own applet for a bare `wget` (FEATURE_SH_STANDALONE), so in
#     scripts `wget -T` is ignored: use `/bin/wget -T N` or `timeout N wget`.
#
# Output is deterministic (sorted entries, mtime 0, uid/gid 0, no
# timestamps in the image config), so image digests are the same on every
# run with the same /bin/busybox.
#
# Usage: scripts/build-images.sh OUTDIR
# Needs: bash, GNU tar, sha256sum, jq, dpkg (architecture), busybox-static.
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ "$#" -eq 1 ] || die "usage: $0 OUTDIR"
outdir="$1"
busybox="${SKIFF_BUSYBOX:-/bin/busybox}"
[ -x "$busybox" ] || die "$busybox not found: apt-get install busybox-static"
command -v jq >/dev/null || die "jq not found: apt-get install jq"
if [[ "$(ldd "$busybox" 2>&1 || true)" == *"=>"* ]]; then
    die "$busybox is dynamically linked: install Debian's busybox-static"
fi

case "$(dpkg --print-architecture 2>/dev/null || uname -m)" in
    amd64 | x86_64) arch=amd64 ;;
    arm64 | aarch64) arch=arm64 ;;
    *) arch="$(dpkg --print-architecture)" ;;
esac

mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# busybox with wget's `T:+` option made a string option (see the top).
if ! command -v perl >/dev/null; then
    cp "$busybox" "$work/busybox"
    log "perl not found: $busybox copied as it is (wget -T crashes)"
elif perl -0777 -pe '
    my $n = s/\^cqSO:o:P:Y:U:T:\+t:n::\x00([^\x00]*)\x00/^cqSO:o:P:Y:U:T:t:n::\x00$1\x00\x00/g;
    die "wget option string found $n times\n" unless $n == 1;' "$busybox" >"$work/busybox" 2>/dev/null; then
    log "patched wget's -T option in a copy of $busybox"
else
    cp "$busybox" "$work/busybox"
    log "wget's option string not found in $busybox: copied as it is"
fi

# Deterministic tar of the directory $1's contents into $2.
det_tar() {
    tar --create --file="$2" --directory="$1" --sort=name --format=gnu \
        --mtime=@0 --owner=0 --group=0 --numeric-owner --no-acls --no-xattrs --no-selinux .
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# Moves file $1 into the layout $2's blob store; prints its sha256 hex.
add_blob() {
    local digest
    digest="$(sha "$1")"
    mkdir -p "$2/blobs/sha256"
    mv "$1" "$2/blobs/sha256/$digest"
    printf '%s' "$digest"
}

# Root filesystem shared by both images: /bin/busybox, /etc basics, /tmp.
base_rootfs() {
    local root="$1"
    mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev,var/www,home}
    chmod 1777 "$root/tmp"
    chmod 0700 "$root/root"
    cp "$work/busybox" "$root/bin/busybox"
    chmod 0755 "$root/bin/busybox"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' \
        >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}

# build_image NAME ROOTFS CONFIG_JSON REF...: writes OUTDIR/NAME.tar.
build_image() {
    local name="$1" root="$2" cfg="$3"
    shift 3
    local layout="$work/$name-layout"
    mkdir -p "$layout"

    det_tar "$root" "$work/layer.tar"
    local layer_size layer
    layer_size="$(size "$work/layer.tar")"
    layer="$(add_blob "$work/layer.tar" "$layout")"

    jq -cS --arg arch "$arch" --arg diff "sha256:$layer" --argjson cfg "$cfg" -n '{
        architecture: $arch, os: "linux", config: $cfg,
        rootfs: {type: "layers", diff_ids: [$diff]},
        history: [{created_by: "skiff scripts/build-images.sh"}]
    }' | tr -d '\n' >"$work/config.json"
    local config_size config
    config_size="$(size "$work/config.json")"
    config="$(add_blob "$work/config.json" "$layout")"

    jq -cS -n --arg c "sha256:$config" --argjson cs "$config_size" \
        --arg l "sha256:$layer" --argjson ls "$layer_size" '{
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
        layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls}]
    }' | tr -d '\n' >"$work/manifest.json"
    local manifest_size manifest
    manifest_size="$(size "$work/manifest.json")"
    manifest="$(add_blob "$work/manifest.json" "$layout")"

    # One index entry per name: containerd's importer names images from
    # io.containerd.image.name; other tools read org.opencontainers.image.ref.name.
    local entries="[]" ref
    for ref in "$@"; do
        entries="$(jq -c --arg m "sha256:$manifest" --argjson s "$manifest_size" --arg ref "$ref" \
            --arg arch "$arch" '. + [{
            mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $s,
            platform: {architecture: $arch, os: "linux"},
            annotations: {"io.containerd.image.name": $ref,
                          "org.opencontainers.image.ref.name": ($ref | sub("^.*:"; ""))}
        }]' <<<"$entries")"
    done
    jq -cS -n --argjson m "$entries" '{schemaVersion: 2, manifests: $m}' | tr -d '\n' >"$layout/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"

    det_tar "$layout" "$outdir/$name.tar"
    log "built $outdir/$name.tar ($*; manifest sha256:$manifest)"
}

# busybox: every applet as a symlink in /bin.
bb_root="$work/busybox-root"
base_rootfs "$bb_root"
"$busybox" --list | while read -r applet; do
    [ "$applet" = busybox ] || ln -sf busybox "$bb_root/bin/$applet"
done
# /bin/wget: the -T wrapper (see the top).
if [ -L "$bb_root/bin/wget" ]; then
    rm "$bb_root/bin/wget"
    cat >"$bb_root/bin/wget" <<'EOF'
#!/bin/sh
# busybox wget with a working -T: Debian's busybox is built without
# FEATURE_WGET_TIMEOUT (no timeout of its own), so -T N, -TN, -qT N,
# --timeout N and --timeout=N are taken off the command line and busybox
# wget runs under busybox timeout instead.
t=
n=$#
while [ "$n" -gt 0 ]; do
    a=$1
    shift
    n=$((n - 1))
    case $a in
    --timeout=*) t=${a#--timeout=} ;;
    --timeout | -T | -[cqsS]*T)
        case $a in -[cqsS]*T) set -- "$@" "${a%T}" ;; esac
        [ "$n" -gt 0 ] || { echo "wget: option $a needs an argument" >&2; exit 1; }
        t=$1
        shift
        n=$((n - 1))
        ;;
    -T*) t=${a#-T} ;;
    *) set -- "$@" "$a" ;;
    esac
done
[ -n "$t" ] || exec busybox wget "$@"
exec busybox timeout "$t" busybox wget "$@"
EOF
    chmod 0755 "$bb_root/bin/wget"
fi
printf '<html><body>skiff busybox</body></html>\n' >"$bb_root/var/www/index.html"
build_image busybox "$bb_root" \
    '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}' \
    docker.io/library/busybox:latest skiff.local/busybox:1

# pause: only sh and sleep.
pause_root="$work/pause-root"
base_rootfs "$pause_root"
ln -s busybox "$pause_root/bin/sh"
ln -s busybox "$pause_root/bin/sleep"
# shellcheck disable=SC2016 # $! is expanded by the image's shell, not here.
pause_cfg='{"Env":["PATH=/bin"],"Entrypoint":["/bin/sh","-c","trap '"'"'exit 0'"'"' TERM INT; while :; do sleep 2147483647 & wait $!; done"]}'
build_image pause "$pause_root" "$pause_cfg" skiff.local/pause:3.9
