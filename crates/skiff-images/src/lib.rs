//! Local images and a skiff-managed containerd: renders containerd's
//! configuration from `scripts/containerd/config.toml`, starts and stops a
//! containerd of skiff's own (own root, state and socket), and imports image
//! tarballs (OCI layout or docker-archive, as `scripts/build-images.sh`
//! makes) into its `k8s.io` namespace. It does not talk CRI: the node agent
//! does.

pub mod config;
pub mod containerd;
pub mod import;
pub mod lifeline;

pub use config::{ConfigError, ContainerdConfig};
pub use containerd::{ManagedContainerd, OnOwnerExit, StartError};
pub use import::{ImportError, import_dir, import_tarball, import_tarball_into};
pub use lifeline::Lifeline;
