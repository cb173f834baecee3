//! The CRI v1 connection the agent drives containerd through: the shared
//! `skiff-cri` crate's client, re-exported where the agent's code expects it.

pub use skiff_cri::{CriClient, CriError};
