//! The kubelet's atomic writer for configMap, secret, downwardAPI and
//! projected volumes: files live in a timestamped `..<ts>` directory, a
//! `..data` symlink points at the current one, and each top-level name is a
//! symlink through `..data`. An update writes a new directory and swaps
//! `..data` with one rename, so a container never sees a half-written set.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Name of the symlink to the current data directory.
pub const DATA_DIR_NAME: &str = "..data";
const DATA_TMP_NAME: &str = "..data_tmp";

/// One file of a volume: content and permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContent {
    /// The bytes.
    pub data: Vec<u8>,
    /// Mode bits (e.g. 0o644).
    pub mode: u32,
}

/// Relative path → file. Paths may have directories (`a/b.txt`).
pub type Payload = BTreeMap<String, FileContent>;

/// Why a payload could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A payload path is absolute, empty, or leaves the volume.
    #[error("invalid path {0:?}: must be relative and must not contain '..'")]
    InvalidPath(String),
    /// The filesystem refused.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes `target` hold exactly `payload`; does nothing when it already
/// does. Files get group `gid` when given (the pod's fsGroup). Returns
/// true when something was written.
pub fn write(target: &Path, payload: &Payload, gid: Option<u32>) -> Result<bool, WriteError> {
    for path in payload.keys() {
        check_path(path)?;
    }
    std::fs::create_dir_all(target).map_err(io(target))?;
    let data_link = target.join(DATA_DIR_NAME);
    let old_dir = std::fs::read_link(&data_link).ok();
    if let Some(old) = &old_dir
        && matches(&target.join(old), payload)
    {
        return Ok(false);
    }
    let ts_name = timestamped_name(target);
    let ts_dir = target.join(&ts_name);
    std::fs::create_dir(&ts_dir).map_err(io(&ts_dir))?;
    std::fs::set_permissions(&ts_dir, std::fs::Permissions::from_mode(0o755)).map_err(io(&ts_dir))?;
    for (rel, file) in payload {
        let path = ts_dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, &file.data).map_err(io(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode)).map_err(io(&path))?;
        if let Some(gid) = gid {
            std::os::unix::fs::lchown(&path, None, Some(gid)).map_err(io(&path))?;
        }
    }
    let tmp_link = target.join(DATA_TMP_NAME);
    let _ = std::fs::remove_file(&tmp_link);
    symlink(&ts_name, &tmp_link).map_err(io(&tmp_link))?;
    std::fs::rename(&tmp_link, &data_link).map_err(io(&data_link))?;

    let new_top: BTreeSet<String> = payload.keys().map(|p| top_level(p)).collect();
    for name in &new_top {
        let link = target.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(Path::new(DATA_DIR_NAME).join(name), &link).map_err(io(&link))?;
        }
    }
    remove_stale(target, &new_top, &ts_name)?;
    Ok(true)
}

/// Removes user-visible links no longer in the payload and old data dirs.
fn remove_stale(target: &Path, keep: &BTreeSet<String>, current: &str) -> Result<(), WriteError> {
    for entry in std::fs::read_dir(target).map_err(io(target))? {
        let entry = entry.map_err(io(target))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name == DATA_DIR_NAME || name == current {
            continue;
        }
        if name.starts_with("..") {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                std::fs::remove_dir_all(&path).map_err(io(&path))?;
            } else {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        } else if !keep.contains(&name) && entry.file_type().map(|t| t.is_symlink()).unwrap_or(false) {
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

/// The payload as currently written, read through `..data`.
pub fn read_current(target: &Path) -> Option<Payload> {
    let dir = target.join(std::fs::read_link(target.join(DATA_DIR_NAME)).ok()?);
    let mut out = Payload::new();
    collect(&dir, &dir, &mut out).ok()?;
    Some(out)
}

fn collect(root: &Path, dir: &Path, out: &mut Payload) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect(root, &path, out)?;
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let mode = entry.metadata()?.permissions().mode() & 0o7777;
            out.insert(
                rel,
                FileContent {
                    data: std::fs::read(&path)?,
                    mode,
                },
            );
        }
    }
    Ok(())
}

fn matches(dir: &Path, payload: &Payload) -> bool {
    let mut current = Payload::new();
    collect(dir, dir, &mut current).is_ok() && current == *payload
}

fn top_level(path: &str) -> String {
    path.split('/').next().unwrap_or(path).to_string()
}

fn check_path(path: &str) -> Result<(), WriteError> {
    let p = Path::new(path);
    let bad = path.is_empty()
        || p.is_absolute()
        || path.starts_with("..")
        || p.components().any(|c| !matches!(c, Component::Normal(_)));
    if bad {
        Err(WriteError::InvalidPath(path.to_string()))
    } else {
        Ok(())
    }
}

/// `..<secs>_<nanos>`, unique within `target`.
fn timestamped_name(target: &Path) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut n = 0u32;
    loop {
        let name = format!("..{}_{:09}.{n}", now.as_secs(), now.subsec_nanos());
        if std::fs::symlink_metadata(target.join(&name)).is_err() {
            return name;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(entries: &[(&str, &str, u32)]) -> Payload {
        entries
            .iter()
            .map(|(p, d, m)| {
                (
                    p.to_string(),
                    FileContent {
                        data: d.as_bytes().to_vec(),
                        mode: *m,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn writes_through_data_symlink_with_modes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("vol");
        let first = payload(&[("a.txt", "one", 0o644), ("sub/b.txt", "two", 0o400)]);
        assert!(write(&target, &first, None).unwrap());
        assert_eq!(std::fs::read_to_string(target.join("a.txt")).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(target.join("sub/b.txt")).unwrap(), "two");
        assert_eq!(
            std::fs::read_link(target.join("a.txt")).unwrap(),
            Path::new("..data/a.txt")
        );
        let mode = std::fs::metadata(target.join("sub/b.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o400);
        assert_eq!(read_current(&target).unwrap(), first);
        assert!(
            !write(&target, &first, None).unwrap(),
            "unchanged payload is not rewritten"
        );
    }

    #[test]
    fn update_swaps_data_and_removes_stale_entries() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("vol");
        write(&target, &payload(&[("a", "1", 0o644), ("b", "2", 0o644)]), None).unwrap();
        let old = std::fs::read_link(target.join(DATA_DIR_NAME)).unwrap();
        write(&target, &payload(&[("a", "changed", 0o644)]), None).unwrap();
        assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "changed");
        assert!(std::fs::symlink_metadata(target.join("b")).is_err());
        assert!(!target.join(old).exists(), "old data dir removed");
        let names: Vec<String> = std::fs::read_dir(&target)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn files_get_the_fs_group() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("vol");
        if let Err(e) = write(&target, &payload(&[("a", "1", 0o640)]), Some(4321)) {
            eprintln!("skipping: cannot chown here: {e}");
            return;
        }
        assert_eq!(std::fs::metadata(target.join("a")).unwrap().gid(), 4321);
    }

    #[test]
    fn rejects_escaping_paths() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../x", "/etc/passwd", "a/../../x", "..data", ""] {
            assert!(
                write(dir.path(), &payload(&[(bad, "x", 0o644)]), None).is_err(),
                "{bad}"
            );
        }
    }
}
