//! `skiff image import` and `skiff image ls` against a throw-away containerd:
//! the local images load and are listed by name, and a missing file, a file
//! that is no image archive and an unreachable containerd give clear errors.
//! Skipped (with a message) without containerd or root.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use skiff_images::{ContainerdConfig, ManagedContainerd};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn skiff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(args)
        .env_remove("CONTAINERD_ADDRESS")
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let prefix = self.0.to_string_lossy().to_string();
        for m in mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&prefix))
        {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn image_import_loads_tarballs_and_ls_lists_them() {
    if !have("containerd") || !have("ctr") {
        eprintln!("SKIPPED: containerd is not installed (apt-get install containerd)");
        return;
    }
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("SKIPPED: containerd needs root");
        return;
    }
    let dir = Dir(PathBuf::from(format!("/tmp/ski-{}", std::process::id())));
    let images = dir.0.join("images");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = Command::new(root.join("scripts/build-images.sh"))
        .arg(&images)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let containerd = ManagedContainerd::start(
        ContainerdConfig::new(dir.0.join("ctd")),
        "containerd",
        Duration::from_secs(30),
    )
    .unwrap();
    let sock = containerd.socket();
    let sock = sock.to_str().unwrap();
    let busybox = images.join("busybox.tar");

    let out = skiff(&["image", "import", "--address", sock, busybox.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let mut names: Vec<&str> = stdout.lines().collect();
    names.sort();
    assert_eq!(
        names,
        ["docker.io/library/busybox:latest", "skiff.local/busybox:1"]
    );

    let out = skiff(&["image", "ls", "--address", &format!("unix://{sock}")]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("TAG") && lines[0].contains("IMAGE ID"),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("skiff.local/busybox ") && l.contains(" 1 ")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("docker.io/library/busybox ") && l.contains(" latest ")),
        "{stdout}"
    );
    assert!(
        !stdout.contains("pause"),
        "only what was imported is listed: {stdout}"
    );

    // The same image as a docker-archive (`docker save` layout: manifest.json).
    let docker = dir.0.join("docker.tar");
    let script = r#"set -e
        x="$1/docker-x"; mkdir -p "$x"; tar -C "$x" -xf "$2"
        m=$(jq -r '.manifests[0].digest' "$x/index.json" | cut -d: -f2)
        cfg=$(jq -r .config.digest "$x/blobs/sha256/$m" | cut -d: -f2)
        layers=$(jq -c '[.layers[].digest | sub("sha256:"; "blobs/sha256/")]' "$x/blobs/sha256/$m")
        printf '[{"Config":"blobs/sha256/%s","RepoTags":["skiff.local/docker-archive:1"],"Layers":%s}]' "$cfg" "$layers" > "$x/manifest.json"
        rm "$x/index.json" "$x/oci-layout"
        tar -C "$x" -cf "$3" ."#;
    let made = Command::new("bash")
        .args(["-c", script, "sh"])
        .arg(&dir.0)
        .arg(&busybox)
        .arg(&docker)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let out = skiff(&["image", "import", "--address", sock, docker.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "skiff.local/docker-archive:1");

    // A missing file, a non-archive and a tar that holds no image.
    let missing = dir.0.join("nope.tar");
    let out = skiff(&["image", "import", "--address", sock, missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("nope.tar: No such file or directory"),
        "{}",
        text(&out).1
    );

    let junk = dir.0.join("junk.tar");
    std::fs::write(&junk, "hello, not a tarball\n".repeat(40)).unwrap();
    let out = skiff(&["image", "import", "--address", sock, junk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("junk.tar: not a tar archive"),
        "{}",
        text(&out).1
    );

    let plain_tar = dir.0.join("plain.tar");
    std::fs::write(dir.0.join("file.txt"), "x").unwrap();
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&dir.0)
        .arg("-cf")
        .arg(&plain_tar)
        .arg("file.txt")
        .status()
        .unwrap();
    assert!(tar.success());
    let out = skiff(&["image", "import", "--address", sock, plain_tar.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("plain.tar: not a loadable image archive"),
        "{}",
        text(&out).1
    );

    // No containerd there.
    let gone = dir.0.join("gone.sock");
    let out = skiff(&[
        "image",
        "import",
        "--address",
        gone.to_str().unwrap(),
        busybox.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("containerd is not reachable at"),
        "{}",
        text(&out).1
    );
    drop(containerd);
}
