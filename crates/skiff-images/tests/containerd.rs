//! End to end against a real containerd: builds the local images with
//! `scripts/build-images.sh`, starts a skiff-managed containerd on its own
//! socket, imports the images directory, runs a busybox container that
//! prints "hello", and stops containerd. Skipped (with a message) when
//! containerd, ctr or runc is missing or the test is not run as root.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use skiff_images::{ContainerdConfig, ManagedContainerd, import_dir};

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
