#!/usr/bin/env bash
# Tests skiff's local images against a real, throw-away containerd:
#   - scripts/build-images.sh builds the same bytes twice (stable digests);
#   - a containerd started from scripts/containerd/config.toml on its own
#     socket imports both tarballs into the k8s.io namespace under their names;
#   - a container from the busybox image prints "hello";
#   - the pause image runs and exits 0 promptly on SIGTERM;
#   - names resolve inside the busybox image: in a network namespace of the
#     test's own, a tiny DNS server (python3) answers *.skiff.test, and a
#     container there reaches its own httpd with `wget` by full name, by a
#     search-domain short name (pod-style resolv.conf, ndots:5) and by an
#     /etc/hosts name, runs `nslookup`; `wget -T` does not crash and
#     `/bin/wget -T 1` (the wrapper) times out against a silent server.
# Everything it started is stopped and removed at the end, pass or fail.
# Skips (exit 0, with a message) when containerd, ctr or runc is missing or
# when not run as root. Exit code: 0 pass or skip, 1 fail.
set -uo pipefail

cd "$(dirname "$0")/.."

skip() { printf 'test-images: SKIPPED: %s\n' "$*" >&2; exit 0; }
fail() { printf 'test-images: FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'test-images: ok: %s\n' "$*" >&2; }

for tool in containerd ctr runc; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed (apt-get install containerd runc)"
done
[ "$(id -u)" -eq 0 ] || skip "containerd needs root"

# A short directory: the unix socket path must stay under 108 bytes.
tmp="$(mktemp -d /tmp/skiff-img.XXXXXX)"
ctd_pid=""
dns_pid=""
netns=""
sock="$tmp/ctd/containerd.sock"
ctr_() { ctr --address "$sock" -n k8s.io "$@"; }
# Container ids name cgroups (/k8s.io/ID), shared by every containerd: keep them unique.
id="${tmp##*.}"
cleanup() {
    [ -z "$dns_pid" ] || { kill "$dns_pid" 2>/dev/null; wait "$dns_pid" 2>/dev/null; }
    if [ -n "$ctd_pid" ]; then
        # Stop what this test ran, then containerd itself (shims exit with their tasks).
        for c in $(ctr_ containers ls -q 2>/dev/null); do
            ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1
            sleep 0.2
            ctr_ tasks rm -f "$c" >/dev/null 2>&1
            ctr_ containers rm "$c" >/dev/null 2>&1
        done
        kill "$ctd_pid" 2>/dev/null
        wait "$ctd_pid" 2>/dev/null
    fi
    # Snapshot and shim mounts left behind would make rm fail.
    grep -o " $tmp/[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null
    done
    [ -z "$netns" ] || ip netns delete "$netns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# 1. Deterministic build.
scripts/build-images.sh "$tmp/a" 2>/dev/null || fail "build-images.sh failed"
scripts/build-images.sh "$tmp/b" 2>/dev/null || fail "second build-images.sh failed"
for f in busybox.tar pause.tar; do
    [ -s "$tmp/a/$f" ] || fail "$f was not built"
    cmp -s "$tmp/a/$f" "$tmp/b/$f" || fail "$f differs between two builds"
done
ok "two builds are byte-identical"

# 2. A containerd of our own from the template.
cfg="$(scripts/containerd/render.sh "$tmp/ctd")" || fail "render.sh failed"
containerd --config "$cfg" >"$tmp/containerd.log" 2>&1 &
ctd_pid=$!
for _ in $(seq 100); do
    ctr --address "$sock" version >/dev/null 2>&1 && break
    kill -0 "$ctd_pid" 2>/dev/null || { cat "$tmp/containerd.log" >&2; fail "containerd exited"; }
    sleep 0.1
done
ctr --address "$sock" version >/dev/null 2>&1 || fail "containerd did not answer on $sock"
grep -q 'Start cni network conf syncer' "$tmp/containerd.log" || fail "CRI plugin did not start"
ok "containerd runs on its own socket with the CRI plugin"

# 3. Import: every name, CRI-managed.
for f in busybox.tar pause.tar; do
    ctr_ images import "$tmp/a/$f" >/dev/null 2>&1 || fail "import of $f failed"
done
names="$(ctr_ images ls -q)"
for ref in docker.io/library/busybox:latest skiff.local/busybox:1 skiff.local/pause:3.9; do
    grep -qx "$ref" <<<"$names" || fail "$ref is not in containerd after import (have: $names)"
done
ok "imported docker.io/library/busybox:latest, skiff.local/busybox:1, skiff.local/pause:3.9"

# 4. busybox prints hello.
out="$(timeout 60 ctr --address "$sock" -n k8s.io run --rm docker.io/library/busybox:latest \
    skiff-img-hello-$id busybox echo hello 2>&1)" || fail "ctr run busybox failed: $out"
[ "$out" = hello ] || fail "busybox printed '$out', not 'hello'"
out="$(timeout 60 ctr --address "$sock" -n k8s.io run --rm skiff.local/busybox:1 \
    skiff-img-applets-$id sh -c 'for a in sh httpd wget nc sleep cat; do command -v $a; done' 2>&1)" ||
    fail "applet check failed: $out"
[ "$(wc -l <<<"$out")" -eq 6 ] || fail "missing applets: $out"
ok "a busybox container prints hello and has sh, httpd, wget, nc, sleep, cat"

# 5. pause runs until SIGTERM, then exits 0 at once (ctr run exits with the task's code).
timeout 60 ctr --address "$sock" -n k8s.io run --rm skiff.local/pause:3.9 skiff-img-pause-$id \
    >/dev/null 2>&1 &
run_pid=$!
for _ in $(seq 50); do
    ctr_ tasks ls 2>/dev/null | grep -q "skiff-img-pause-$id .*RUNNING" && break
    sleep 0.1
done
sleep 0.5
ctr_ tasks ls | grep -q "skiff-img-pause-$id .*RUNNING" || fail "pause is not running"
kill -0 "$run_pid" 2>/dev/null || fail "pause exited before it was signalled"
start=$SECONDS
ctr_ tasks kill -s SIGTERM skiff-img-pause-$id || fail "could not signal pause"
wait "$run_pid"
code=$?
[ "$code" -eq 0 ] || fail "pause exited with code $code after SIGTERM"
[ $((SECONDS - start)) -le 2 ] || fail "pause took $((SECONDS - start)) s to stop after SIGTERM"
ok "pause runs until SIGTERM and then exits 0 at once"

# 6. Names resolve in the busybox image (DNS, search domains, /etc/hosts), and wget -T works.
if ! command -v python3 >/dev/null 2>&1; then
    printf 'test-images: SKIPPED the DNS check: python3 is not installed\n' >&2
elif ! command -v ip >/dev/null 2>&1; then
    printf 'test-images: SKIPPED the DNS check: ip (iproute2) is not installed\n' >&2
else
    netns="skiff-img-$id"
    ip netns add "$netns" || fail "could not create netns $netns"
    ip -n "$netns" link set lo up || fail "could not bring lo up in $netns"
    # A DNS server on 127.0.0.53 in the netns: A 127.0.0.1 for *.skiff.test,
    # NODATA for other types there, NXDOMAIN for every other name.
    cat >"$tmp/dns.py" <<'PY'
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.53", 53))
open("/dev/stdout", "w").write("ready\n")
while True:
    d, peer = s.recvfrom(4096)
    i, labels = 12, []
    while d[i]:
        labels.append(d[i + 1:i + 1 + d[i]].decode().lower())
        i += d[i] + 1
    qtype = struct.unpack(">H", d[i + 1:i + 3])[0]
    question = d[12:i + 5]
    ours = labels[-2:] == ["skiff", "test"]
    answer = b""
    if ours and qtype == 1:
        answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + bytes([127, 0, 0, 1])
    flags = 0x8580 if ours else 0x8583
    head = d[:2] + struct.pack(">HHHHH", flags, 1, 1 if answer else 0, 0, 0)
    s.sendto(head + question + answer, peer)
PY
    ip netns exec "$netns" python3 -u "$tmp/dns.py" >"$tmp/dns.out" 2>&1 &
    dns_pid=$!
    for _ in $(seq 100); do
        grep -q ready "$tmp/dns.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q ready "$tmp/dns.out" || fail "the test DNS server did not start: $(cat "$tmp/dns.out")"
    printf 'search ns1.svc.cluster.local skiff.test\nnameserver 127.0.0.53\noptions ndots:5\n' \
        >"$tmp/resolv.conf"
    printf '127.0.0.1\tlocalhost\n127.0.0.1\tfrom-hosts\n' >"$tmp/hosts"
    # shellcheck disable=SC2016 # expanded by the container's shell.
    script='httpd -p 127.0.0.1:8080 -h /var/www
for url in http://web.skiff.test:8080/ http://web:8080/ http://from-hosts:8080/; do
    wget -qO- "$url" | grep -q "skiff busybox" || { echo "wget $url failed"; exit 1; }
done
nslookup web.skiff.test | grep -q "127.0.0.1" || { echo "nslookup web.skiff.test failed"; exit 1; }
if nslookup nothere.example >/dev/null 2>&1; then echo "nslookup nothere.example succeeded"; exit 1; fi
wget -T 1 -qO- http://web.skiff.test:8080/ | grep -q "skiff busybox" || { echo "wget -T failed"; exit 1; }
sleep 30 | nc -l -p 8081 >/dev/null &
sleep 0.2
start=$(date +%s)
if /bin/wget -T 1 -qO- http://web.skiff.test:8081/ >/dev/null 2>&1; then
    echo "/bin/wget -T against a silent server succeeded"; exit 1
fi
[ $(( $(date +%s) - start )) -le 5 ] || { echo "/bin/wget -T 1 did not time out"; exit 1; }
echo names-ok'
    out="$(timeout 120 ctr --address "$sock" -n k8s.io run --rm \
        --with-ns "network:/var/run/netns/$netns" \
        --mount "type=bind,src=$tmp/resolv.conf,dst=/etc/resolv.conf,options=rbind:ro" \
        --mount "type=bind,src=$tmp/hosts,dst=/etc/hosts,options=rbind:ro" \
        skiff.local/busybox:1 "skiff-img-dns-$id" sh -c "$script" 2>&1)"
    [ "$(tail -n1 <<<"$out")" = names-ok ] || fail "names do not resolve in the busybox image: $out"
    ok "wget and nslookup by name (DNS, search domain, /etc/hosts) and wget -T work in the busybox image"
fi

printf 'test-images: PASS\n' >&2
