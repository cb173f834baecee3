//! The service proxy (kube-proxy's role) on nftables: Services and
//! EndpointSlices become DNAT rules in skiff's own `table ip skiff`, and
//! nothing else on the host is touched.
//!
//! Owns: [`model`] (API objects → service ports), [`render`] (the pure
//! ruleset renderer), [`nft`] (full/incremental `nft -f` transactions),
//! [`state`] (the applied state diffed per service port) and [`sync`]
//! (the watch + debounce loop behind [`run`]). IPv4 only for now (an
//! `ip6 skiff` table would mirror it).

pub mod model;
pub mod nft;
pub mod render;
pub mod state;
pub mod sync;

#[cfg(test)]
mod tests;

use ipnet::Ipv4Net;

use crate::AgentConfig;

pub use nft::{Nft, NftError};
pub use sync::{Syncer, run};

/// Why the proxy stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Applying rules failed.
    #[error(transparent)]
    Nft(#[from] NftError),
    /// The cluster's objects could not be watched.
    #[error("watching {what}: {message}")]
    Watch {
        /// Services or EndpointSlices.
        what: &'static str,
        /// The watcher's error.
        message: String,
    },
}

/// The pod network (`10.42.0.0/16`) when the agent is not told otherwise.
pub const DEFAULT_CLUSTER_CIDR: Ipv4Net = match Ipv4Net::new(std::net::Ipv4Addr::new(10, 42, 0, 0), 16) {
    Ok(n) => n,
    Err(_) => panic!("constant CIDR"),
};

/// Settings of the proxy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// This node's name: endpoints on it are "local".
    pub node_name: String,
    /// The pod network; traffic to ClusterIPs from outside it is masqueraded.
    pub cluster_cidr: Ipv4Net,
    /// Where `nft` runs (host by default).
    pub nft: Nft,
    /// How long a burst of changes is collected before one sync.
    pub debounce: std::time::Duration,
}

impl ProxyConfig {
    /// The proxy settings of an agent (cluster CIDR 10.42.0.0/16).
    pub fn from_agent(cfg: &AgentConfig) -> ProxyConfig {
        ProxyConfig {
            node_name: cfg.node_name.clone(),
            cluster_cidr: DEFAULT_CLUSTER_CIDR,
            nft: Nft::default(),
            debounce: std::time::Duration::from_millis(20),
        }
    }
}

/// Removes skiff's proxy rules from the host: deletes `table ip skiff`
/// and nothing else.
pub fn cleanup() -> Result<(), NftError> {
    Nft::default().delete_table()
}
