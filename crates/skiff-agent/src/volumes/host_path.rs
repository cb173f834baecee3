//! hostPath volumes: the `type` check upstream does before mounting
//! (DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice,
//! BlockDevice; empty means no check), creating what the type asks for.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::HostPathVolumeSource;

use super::VolumeError;

/// Checks (or creates) the path of a hostPath volume and returns it.
pub fn prepare(source: &HostPathVolumeSource) -> Result<PathBuf, VolumeError> {
    let path = PathBuf::from(&source.path);
    let kind = source.type_.as_deref().unwrap_or("");
    let meta = std::fs::metadata(&path);
    let fail = |what: &str| {
        Err(VolumeError::HostPathType(format!(
            "hostPath type check failed: {} is not {what}",
            path.display()
        )))
    };
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => fail("a directory"),
            Err(_) => create_dir(&path),
        },
        "Directory" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            _ => fail("a directory"),
        },
        "FileOrCreate" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => fail("a file"),
            Err(_) => create_file(&path),
        },
        "File" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            _ => fail("a file"),
        },
        "Socket" => match meta {
            Ok(m) if m.file_type().is_socket() => Ok(()),
            _ => fail("a socket file"),
        },
        "CharDevice" => match meta {
            Ok(m) if m.file_type().is_char_device() => Ok(()),
            _ => fail("a character device"),
        },
        "BlockDevice" => match meta {
            Ok(m) if m.file_type().is_block_device() => Ok(()),
            _ => fail("a block device"),
        },
        other => Err(VolumeError::HostPathType(format!(
            "unsupported hostPath type {other:?}"
        ))),
    }?;
    Ok(path)
}

fn create_dir(path: &Path) -> Result<(), VolumeError> {
    let io = |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(io)
}

/// FileOrCreate creates the file but not its parent directory, as upstream.
fn create_file(path: &Path) -> Result<(), VolumeError> {
    let io = |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(path: &Path, kind: &str) -> HostPathVolumeSource {
        HostPathVolumeSource {
            path: path.to_string_lossy().into_owned(),
            type_: Some(kind.to_string()),
        }
    }

    #[test]
    fn types_are_checked_and_created_like_upstream() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("made/dir");
        assert_eq!(prepare(&src(&d, "DirectoryOrCreate")).unwrap(), d);
        assert!(d.is_dir());
        assert!(prepare(&src(&d, "Directory")).is_ok());
        let err = prepare(&src(&d, "File")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("hostPath type check failed: {} is not a file", d.display())
        );
        let f = dir.path().join("f.txt");
        assert!(prepare(&src(&f, "File")).is_err());
        prepare(&src(&f, "FileOrCreate")).unwrap();
        assert!(f.is_file());
        assert!(prepare(&src(&dir.path().join("no/parent.txt"), "FileOrCreate")).is_err());
        assert!(prepare(&src(&f, "Socket")).is_err());
        assert!(
            prepare(&src(&dir.path().join("absent"), "")).is_ok(),
            "no type: no check"
        );
        assert!(prepare(&src(&f, "Weird")).is_err());
    }
}
