//! skiff-dns: cluster DNS served from Services and EndpointSlices, as CoreDNS's
//! kubernetes plugin answers them (the "Kubernetes DNS-Based Service Discovery"
//! specification), with other names forwarded to upstream resolvers.
//!
//! [`serve`] is the entry point; [`ensure_kube_dns_service`] publishes it as the
//! `kube-dns` Service in `kube-system`.

pub mod answer;
pub mod chase;
pub mod config;
pub mod embed;
pub mod forward;
pub mod kube_dns;
pub mod lookup;
pub mod names;
pub mod reverse;
pub mod server;

pub use config::{DnsConfig, DnsError};
pub use embed::{Embedded, start};
pub use kube_dns::ensure_kube_dns_service;
pub use server::{serve, serve_lookup};
