//! Memory-backed volume directories: mounting a tmpfs (emptyDir with
//! `medium: Memory`, secret and projected volumes, as the kubelet does) and
//! unmounting every mount under a pod's directory at clean-up. Uses the
//! `mount`/`umount` programs; reads `/proc/self/mountinfo`.

use std::path::{Path, PathBuf};

use super::VolumeError;

/// Mount points at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let code = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(code).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True when `dir` itself is a mount point.
pub fn is_mount_point(dir: &Path) -> bool {
    mounts_under(dir).iter().any(|p| p == dir)
}

/// Mounts a tmpfs on `dir` (created if missing) unless one is there;
/// `size_bytes` caps it.
pub async fn ensure_tmpfs(dir: &Path, size_bytes: Option<u64>) -> Result<(), VolumeError> {
    std::fs::create_dir_all(dir).map_err(|source| VolumeError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if is_mount_point(dir) {
        return Ok(());
    }
    let mut options = "mode=0777".to_string();
    if let Some(size) = size_bytes.filter(|s| *s > 0) {
        options.push_str(&format!(",size={size}"));
    }
    run(
        "mount",
        &["-t", "tmpfs", "-o", &options, "tmpfs", &dir.to_string_lossy()],
    )
    .await
}

/// Unmounts `dir` (lazily if it is busy).
pub async fn unmount(dir: &Path) -> Result<(), VolumeError> {
    let path = dir.to_string_lossy();
    if run("umount", &[&path]).await.is_ok() {
        return Ok(());
    }
    run("umount", &["-l", &path]).await
}

async fn run(program: &str, args: &[&str]) -> Result<(), VolumeError> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .map_err(|e| VolumeError::Mount(format!("running {program}: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(VolumeError::Mount(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/x\\134y"), "/x\\y");
    }

    #[tokio::test]
    async fn tmpfs_mounts_once_and_unmounts() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("mem");
        if let Err(e) = ensure_tmpfs(&vol, Some(1 << 20)).await {
            eprintln!("skipping: cannot mount tmpfs here: {e}");
            return;
        }
        assert!(is_mount_point(&vol));
        ensure_tmpfs(&vol, Some(1 << 20)).await.unwrap();
        assert_eq!(mounts_under(dir.path()).len(), 1, "mounted only once");
        unmount(&vol).await.unwrap();
        assert!(!is_mount_point(&vol));
    }
}
