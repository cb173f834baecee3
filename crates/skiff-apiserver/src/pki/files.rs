//! PEM files of the PKI on disk: a private directory, `<name>.crt` (0644) and
//! `<name>.key` (0600) pairs, written atomically (temp file + rename).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::{CertKey, PkiError};

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and parents) with mode 0700 if it does not exist.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))
}

/// Reads `<name>.crt` and `<name>.key` from `dir`; `None` when either is missing.
pub(crate) fn read_pair(dir: &Path, name: &str) -> Result<Option<CertKey>, PkiError> {
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    let (Some(cert_pem), Some(key_pem)) = (read_optional(&cert_path)?, read_optional(&key_path)?) else {
        return Ok(None);
    };
    Ok(Some(CertKey { cert_pem, key_pem }))
}

fn read_optional(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Writes `<name>.key` (0600) then `<name>.crt` (0644) into `dir`.
pub(crate) fn write_pair(dir: &Path, name: &str, cert_pem: &str, key_pem: &str) -> Result<(), PkiError> {
    let key_path = dir.join(format!("{name}.key"));
    write_atomic(&key_path, key_pem.as_bytes(), 0o600).map_err(io_err(&key_path))?;
    let cert_path = dir.join(format!("{name}.crt"));
    write_atomic(&cert_path, cert_pem.as_bytes(), 0o644).map_err(io_err(&cert_path))
}

/// Writes `contents` to `path` with `mode`, through a temporary file in the
/// same directory renamed over `path`, so readers never see half a file.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}
