//! skiff-agent: the node agent (the kubelet's role). It registers its Node,
//! keeps its Lease fresh, and makes every pod bound to it real containers
//! through CRI v1 (containerd), reporting pod status back through the API.
//!
//! Owns: the CRI connection ([`cri`]), runtime labels ([`labels`]), and the
//! node/pod/volume/probe/node-API modules. Must not: reach the store; all
//! cluster access goes through a `kube::Client`.

pub mod cni;
pub mod config;
pub mod cri;
pub mod labels;
pub mod probes;
pub mod spec;
pub mod volumes;

pub use config::AgentConfig;
pub use cri::{CriClient, CriError};
