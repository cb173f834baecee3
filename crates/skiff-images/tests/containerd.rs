//! End to end against a real containerd: builds the local images with
//! `scripts/build-images.sh`, starts a skiff-managed containerd on its own
//! socket, imports the images directory, runs a busybox container that
//! prints "hello", and stops containerd; and what happens to a managed
//! containerd, its shims, containers and mounts when its owner dies without
//! stopping it (both `OnOwnerExit` modes, adoption by the next containerd). Skipped (with a message) when
//! containerd, ctr or runc is missing or the test is not run as root.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use skiff_images::{ContainerdConfig, ManagedContainerd, OnOwnerExit, import_dir};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap()
        .status
        .success()
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ctr(socket: &Path, args: &[&str]) -> std::process::Output {
    Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args(["-n", "k8s.io"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn imported_busybox_image_runs_hello_in_a_managed_containerd() {
    for tool in ["containerd", "ctr", "runc"] {
        if !have(tool) {
            eprintln!("SKIPPED: {tool} is not installed (apt-get install containerd runc)");
            return;
        }
    }
    if !is_root() {
        eprintln!("SKIPPED: containerd needs root");
        return;
    }
    // Short path: unix socket addresses are limited to 107 bytes.
    let dir = PathBuf::from(format!("/tmp/skiff-img-it.{}", std::process::id()));
    let images = dir.join("images");
    let built = Command::new(repo_root().join("scripts/build-images.sh"))
        .arg(&images)
        .status()
        .unwrap();
    assert!(built.success(), "build-images.sh failed");

    let mut containerd = ManagedContainerd::start(
        ContainerdConfig::new(dir.join("ctd")),
        "containerd",
        Duration::from_secs(20),
    )
    .unwrap();
    let socket = containerd.socket();

    let mut names = import_dir("ctr", &socket, &images).unwrap();
    names.sort();
    assert_eq!(
        names,
        [
            "docker.io/library/busybox:latest",
            "skiff.local/busybox:1",
            "skiff.local/pause:3.9"
        ]
    );

    let id = format!("skiff-img-it-{}", std::process::id());
    let run = ctr(
        &socket,
        &[
            "run",
            "--rm",
            "skiff.local/busybox:1",
            &id,
            "busybox",
            "echo",
            "hello",
        ],
    );
    assert!(
        run.status.success(),
        "ctr run failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "hello");

    let pid = containerd.pid().unwrap();
    containerd.stop();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "containerd still runs after stop"
    );
    drop(containerd);

    // Snapshot mounts must go before the directory can be removed.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let prefix = dir.to_string_lossy().to_string();
    let mut ours: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    ours.sort_by(|a, b| b.cmp(a));
    for m in ours {
        let _ = Command::new("umount").args(["-l", m]).status();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn proc_alive(pid: &str) -> bool {
    // A zombie has an empty cmdline: it is gone for our purposes.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

/// A containerd with the local images and one detached `sleep 600`
/// container: (containerd, container id, the container's pid, its shims' pids).
fn containerd_with_a_container(
    dir: &Path,
    on_exit: OnOwnerExit,
) -> (ManagedContainerd, String, String, Vec<String>) {
    let images = dir.join("images");
    let built = Command::new(repo_root().join("scripts/build-images.sh"))
        .arg(&images)
        .status()
        .unwrap();
    assert!(built.success(), "build-images.sh failed");
    let containerd = ManagedContainerd::start_with(
        ContainerdConfig::new(dir.join("ctd")),
        "containerd",
        Duration::from_secs(20),
        on_exit,
    )
    .unwrap();
    let socket = containerd.socket();
    import_dir("ctr", &socket, &images).unwrap();
    // Unique per test: containers of the same id in two containerds would share runc's state dir.
    let id = dir.file_name().unwrap().to_string_lossy().replace('.', "-");
    let run = ctr(
        &socket,
        &[
            "run",
            "-d",
            "skiff.local/busybox:1",
            &id,
            "busybox",
            "sleep",
            "600",
        ],
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let task_pid = running_task_pid(&socket, &id).unwrap();
    let shims: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.contains("containerd-shim") && cmdline.contains(&*socket.to_string_lossy()))
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    assert!(!shims.is_empty(), "no shim serves {}", socket.display());
    (containerd, id, task_pid, shims)
}

/// The pid of task `id` when it is RUNNING.
fn running_task_pid(socket: &Path, id: &str) -> Option<String> {
    let tasks = String::from_utf8_lossy(&ctr(socket, &["tasks", "ls"]).stdout).into_owned();
    tasks
        .lines()
        .find(|l| l.starts_with(id) && l.contains("RUNNING"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_string)
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

fn can_run_containers() -> bool {
    for tool in ["containerd", "ctr", "runc"] {
        if !have(tool) {
            eprintln!("SKIPPED: {tool} is not installed (apt-get install containerd runc)");
            return false;
        }
    }
    if !is_root() {
        eprintln!("SKIPPED: containerd needs root");
        return false;
    }
    true
}

/// A test's containerd whose owner goes away without stopping it
/// (`abandon` runs what the owner's death would run) takes its container,
/// the container's shim and its mounts down with it.
#[test]
fn an_abandoned_test_containerd_leaves_no_process_or_mount() {
    if !can_run_containers() {
        return;
    }
    let dir = PathBuf::from(format!("/tmp/skiff-img-ab.{}", std::process::id()));
    let on_exit = OnOwnerExit::StopEverything {
        unmount_under: dir.clone(),
    };
    let (mut containerd, _id, task_pid, shims) = containerd_with_a_container(&dir, on_exit);
    let containerd_pid = containerd.pid().unwrap().to_string();

    containerd.abandon();

    for pid in shims.iter().chain([&task_pid, &containerd_pid]) {
        assert!(!proc_alive(pid), "process {pid} survived its containerd's owner");
    }
    let left = mounts_under(&dir);
    assert!(left.is_empty(), "mounts left: {left:?}");
    drop(containerd);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A server's containerd (the default) stops with its owner, but its
/// containers keep running and the next containerd on the same directories
/// adopts them: what a `skiff server` killed and started again relies on.
#[test]
fn a_servers_containerd_stops_with_its_owner_and_the_next_one_adopts_the_containers() {
    if !can_run_containers() {
        return;
    }
    let dir = PathBuf::from(format!("/tmp/skiff-img-ad.{}", std::process::id()));
    let (mut containerd, id, task_pid, shims) =
        containerd_with_a_container(&dir, OnOwnerExit::StopContainerd);
    let containerd_pid = containerd.pid().unwrap().to_string();

    containerd.abandon();
    assert!(!proc_alive(&containerd_pid), "containerd survived its owner");
    assert!(proc_alive(&task_pid), "the container died with containerd");

    let mut next = ManagedContainerd::start_with(
        ContainerdConfig::new(dir.join("ctd")),
        "containerd",
        Duration::from_secs(20),
        OnOwnerExit::StopEverything {
            unmount_under: dir.clone(),
        },
    )
    .unwrap();
    assert_eq!(
        running_task_pid(&next.socket(), &id).as_deref(),
        Some(task_pid.as_str())
    );

    // The second instance cleans up for both (and checks the test-mode path once more).
    next.abandon();
    for pid in shims.iter().chain([&task_pid]) {
        assert!(!proc_alive(pid), "process {pid} survived");
    }
    assert!(mounts_under(&dir).is_empty());
    drop((containerd, next));
    std::fs::remove_dir_all(&dir).unwrap();
}
