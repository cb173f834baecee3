//! Image import into a containerd's `k8s.io` namespace (where the CRI plugin
//! looks) from OCI-layout or docker-archive tarballs, through `ctr images
//! import`: one tarball, or every tarball of an air-gap images directory.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// `ctr` could not be run.
    #[error("running ctr: {0}")]
    Spawn(io::Error),
    /// `ctr images import` failed.
    #[error("importing {path}: ctr exited with {status}: {stderr}")]
    Failed {
        /// The tarball.
        path: PathBuf,
        /// ctr's exit status.
        status: String,
        /// What ctr printed on stderr.
        stderr: String,
    },
    /// The images directory could not be read.
    #[error("reading {path}: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Imports the tarball `path` into the containerd at `socket` (namespace
/// `k8s.io`) with the `ctr` binary; returns the image names it created.
pub fn import_tarball(ctr: &str, socket: &Path, path: &Path) -> Result<Vec<String>, ImportError> {
    import_tarball_into(ctr, socket, "k8s.io", path)
}

/// [`import_tarball`] into the containerd namespace `namespace`.
pub fn import_tarball_into(
    ctr: &str,
    socket: &Path,
    namespace: &str,
    path: &Path,
) -> Result<Vec<String>, ImportError> {
    let output = Command::new(ctr)
        .arg("--address")
        .arg(socket)
        .args(["-n", namespace, "images", "import"])
        .arg(path)
        .output()
        .map_err(ImportError::Spawn)?;
    if !output.status.success() {
        return Err(ImportError::Failed {
            path: path.to_path_buf(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(imported_names(&String::from_utf8_lossy(&output.stdout)))
}

/// Imports every `*.tar` in `dir` (sorted by name, as k3s does for air-gap
/// images); returns the image names created. A missing directory imports nothing.
pub fn import_dir(ctr: &str, socket: &Path, dir: &Path) -> Result<Vec<String>, ImportError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ImportError::ReadDir {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut tarballs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|ext| ext == "tar"))
        .collect();
    tarballs.sort();
    let mut names = Vec::new();
    for tarball in tarballs {
        names.extend(import_tarball(ctr, socket, &tarball)?);
    }
    Ok(names)
}

/// Names from ctr's progress lines: `unpacking NAME (sha256:...)...done`.
fn imported_names(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("unpacking "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_ctr_progress_lines() {
        let out = "unpacking docker.io/library/busybox:latest (sha256:674d)...done\n\
                   unpacking skiff.local/busybox:1 (sha256:674d)...done\n";
        assert_eq!(
            imported_names(out),
            ["docker.io/library/busybox:latest", "skiff.local/busybox:1"]
        );
    }

    #[test]
    fn a_missing_images_directory_imports_nothing() {
        let names = import_dir("ctr", Path::new("/tmp/sock"), Path::new("/nonexistent/images")).unwrap();
        assert!(names.is_empty());
    }
}
