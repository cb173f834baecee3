//! Rendering of a skiff-managed containerd's configuration file from the
//! template the repository ships (`scripts/containerd/config.toml`). Owns
//! the directory layout of one instance; does not start anything.

use std::path::{Path, PathBuf};

/// The template, with `@ROOT@`, `@STATE@`, `@ADDRESS@`, `@CNI_CONF_DIR@` and
/// `@SANDBOX_IMAGE@` placeholders.
pub const TEMPLATE: &str = include_str!("../../../scripts/containerd/config.toml");

/// The sandbox ("pause") image `scripts/build-images.sh` builds.
pub const DEFAULT_SANDBOX_IMAGE: &str = "skiff.local/pause:3.9";

/// Longest unix socket path the kernel accepts (sun_path minus its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Why a configuration could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A path is relative; containerd needs absolute ones.
    #[error("{0} is not an absolute path")]
    NotAbsolute(PathBuf),
    /// A value holds a character that cannot go into a TOML string as is.
    #[error("{0:?} contains a quote, backslash or control character")]
    BadCharacter(String),
    /// The socket path is longer than a unix socket address allows.
    #[error("socket path {0} is longer than {MAX_SOCKET_PATH} bytes")]
    SocketPathTooLong(PathBuf),
}

/// One containerd instance's files, all under `dir` unless overridden:
/// `dir/root`, `dir/state`, `dir/containerd.sock`, `dir/config.toml` and the
/// CNI config directory `dir/cni`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerdConfig {
    /// Directory holding the instance's root, state, socket and config.
    pub dir: PathBuf,
    /// Where the pod network's CNI configuration is read from.
    pub cni_conf_dir: PathBuf,
    /// The pod sandbox image; must already be in the `k8s.io` namespace.
    pub sandbox_image: String,
}

impl ContainerdConfig {
    /// An instance under `dir` with the default CNI directory and pause image.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self {
            cni_conf_dir: dir.join("cni"),
            dir,
            sandbox_image: DEFAULT_SANDBOX_IMAGE.to_string(),
        }
    }

    /// containerd's root directory (content store, snapshots, metadata).
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// containerd's state directory (task bundles, shim state).
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The gRPC socket: the CRI endpoint is `unix://` followed by this path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// Where [`ManagedContainerd`](crate::ManagedContainerd) writes the config.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// The configuration file's text.
    pub fn render(&self) -> Result<String, ConfigError> {
        let root = checked_path(&self.root())?;
        let state = checked_path(&self.state())?;
        let socket = checked_path(&self.socket())?;
        if socket.len() > MAX_SOCKET_PATH {
            return Err(ConfigError::SocketPathTooLong(self.socket()));
        }
        let cni = checked_path(&self.cni_conf_dir)?;
        let sandbox = checked(&self.sandbox_image)?;
        Ok(TEMPLATE
            .replace("@ROOT@", &root)
            .replace("@STATE@", &state)
            .replace("@ADDRESS@", &socket)
            .replace("@CNI_CONF_DIR@", &cni)
            .replace("@SANDBOX_IMAGE@", sandbox))
    }
}

fn checked_path(path: &Path) -> Result<String, ConfigError> {
    if !path.is_absolute() {
        return Err(ConfigError::NotAbsolute(path.to_path_buf()));
    }
    checked(&path.to_string_lossy()).map(str::to_string)
}

fn checked(value: &str) -> Result<&str, ConfigError> {
    if value.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        return Err(ConfigError::BadCharacter(value.to_string()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_placeholder_with_the_instance_paths() {
        let text = ContainerdConfig::new("/tmp/node-a").render().unwrap();
        assert!(!text.contains('@'), "placeholder left in:\n{text}");
        assert!(text.contains("root = \"/tmp/node-a/root\""));
        assert!(text.contains("state = \"/tmp/node-a/state\""));
        assert!(text.contains("address = \"/tmp/node-a/containerd.sock\""));
        assert!(text.contains("address = \"/tmp/node-a/containerd.sock.ttrpc\""));
        assert!(text.contains("conf_dir = \"/tmp/node-a/cni\""));
        assert!(text.contains("sandbox_image = \"skiff.local/pause:3.9\""));
        assert!(text.contains("restrict_oom_score_adj = true"));
        assert!(text.contains("bin_dir = \"/usr/lib/cni\""));
        assert!(text.contains("SystemdCgroup = false"));
    }

    #[test]
    fn rejects_relative_paths_quotes_and_long_sockets() {
        assert!(matches!(
            ContainerdConfig::new("rel/dir").render(),
            Err(ConfigError::NotAbsolute(_))
        ));
        assert!(matches!(
            ContainerdConfig::new("/tmp/a\"b").render(),
            Err(ConfigError::BadCharacter(_))
        ));
        let long = format!("/tmp/{}", "x".repeat(100));
        assert!(matches!(
            ContainerdConfig::new(long).render(),
            Err(ConfigError::SocketPathTooLong(_))
        ));
    }
}
