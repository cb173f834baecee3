#!/usr/bin/env bash
# Runs skiff's whole test suite; the exit code says pass (0) or fail.
#
# Installs what the tests need when it is missing (Debian packages as root,
# Rust via rustup, Python's `kubernetes` client via pip), builds the
# workspace, then checks formatting, runs clippy with -D warnings and runs
# every test: unit tests, the store conformance suite on SQLite and etcd, and
# the end-to-end tests in tests/ where the real kubectl drives real
# `skiff server`s on both backends. The node-agent tests (issue4_*, and the
# agent's own) run real containers: each starts a containerd of its own
# (Debian's containerd, runc and CNI plugins, installed here) with the local
# images from scripts/build-images.sh (built once into
# target/skiff-e2e-images-<hash>); they need root and skip with a message without it.
#
# Uses cargo-nextest when it is installed (faster, one process per test),
# otherwise cargo test. Set SKIFF_TEST_NO_INSTALL=1 to skip installing.
set -uo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

if [ -z "${SKIFF_TEST_NO_INSTALL:-}" ]; then
    ensure_debs python3 python3-pip || die "could not install Debian packages"
    ensure_rust || die "could not install Rust"
fi
ensure_kubectl
export_protoc
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if [ "${CI:-}" = "true" ]; then
    # A fresh clone builds once: incremental state only costs time and disk.
    export CARGO_INCREMENTAL=0
fi

# Python's official client, for the e2e client check.
python="${SKIFF_PYTHON:-python3}"
if ! "$python" -c 'import kubernetes' 2>/dev/null && [ -z "${SKIFF_TEST_NO_INSTALL:-}" ]; then
    log "installing Python's kubernetes client (pip)"
    "$python" -m pip install --quiet --disable-pip-version-check kubernetes 2>/dev/null ||
        "$python" -m pip install --quiet --disable-pip-version-check --break-system-packages kubernetes ||
        warn "could not install Python's kubernetes client: its e2e check will be skipped"
fi
if "$python" -c 'import kubernetes' 2>/dev/null; then
    export SKIFF_E2E_REQUIRE_PYTHON=1
fi

# Every process the tests start inherits this mark; the leak check at the end looks for it.
export SKIFF_TEST_RUN="$$.$(date +%s)"

failed=()
step() {
    local name="$1"
    shift
    log "$name: $*"
    local start=$SECONDS
    if "$@"; then
        log "$name: ok ($((SECONDS - start)) s)"
    else
        log "$name: FAILED ($((SECONDS - start)) s)"
        failed+=("$name")
    fi
}

step fmt cargo fmt --all -- --check
step build cargo build --workspace --all-targets
# The e2e tests run the skiff binary this build made (no rebuild per test).
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export SKIFF_BIN="$target_dir/debug/skiff"
# Production code may not unwrap; test code may (a failed unwrap is a failed test).
step clippy cargo clippy --workspace --lib --bins -- -D warnings
step clippy-tests cargo clippy --workspace --tests --benches --examples -- -D warnings -A clippy::unwrap_used
# Local images against a throw-away containerd (skips when containerd is missing or not root).
step images scripts/test-images.sh
if cargo nextest --version >/dev/null 2>&1; then
    step test cargo nextest run --workspace --no-fail-fast --failure-output final
    step doctest cargo test --workspace --doc
else
    step test cargo test --workspace --no-fail-fast
fi

# Leak check: no containerd, shim, skiff or etcd process the tests started may
# outlive them (found by the SKIFF_TEST_RUN mark in their environment; a
# containerd passes its environment on to its shims). Stragglers get 10 s to
# exit, then are printed, killed and fail the run.
leaked_processes() {
    local p pid comm
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = "$$" ] && continue
        comm=$(cat "$p/comm" 2>/dev/null) || continue
        case "$comm" in containerd | containerd-shim* | skiff | skiff-* | etcd) ;; *) continue ;; esac
        tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qxF "SKIFF_TEST_RUN=$SKIFF_TEST_RUN" || continue
        echo "$pid"
    done
}
check_leaks() {
    local left
    for _ in $(seq 20); do
        left=$(leaked_processes)
        [ -z "$left" ] && return 0
        sleep 0.5
    done
    warn "processes started by the tests are still running:"
    for pid in $left; do
        printf '  pid %s (ppid %s): %s\n' "$pid" "$(awk '{ print $4 }' "/proc/$pid/stat" 2>/dev/null)" \
            "$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" >&2
    done
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null
    return 1
}
step leaks check_leaks

echo
if [ "${#failed[@]}" -eq 0 ]; then
    log "all steps passed (fmt, build, clippy, tests) in ${SECONDS} s"
    exit 0
fi
log "FAILED steps: ${failed[*]} (after ${SECONDS} s)"
exit 1
