//! Simulated nodes: a process that plays the kubelet for many fake nodes at
//! once, using only the public Kubernetes API (kube-rs), so it can drive any
//! API server. It registers Node objects, renews one Lease per node in
//! `kube-node-lease`, and moves pods bound to its nodes to Running/Ready (or
//! Succeeded for run-to-completion pods), finishing graceful deletions.
//!
//! Modules: [`config`] (flags and parsing), [`node`] (Node/Lease objects),
//! [`pods`] (the pure kubelet decisions and pod status), [`kubelet`] (the pod
//! loop), [`run`] (registration, leases, node watch, control file).

pub mod config;
pub mod kubelet;
pub mod node;
pub mod pods;
pub mod run;

pub use config::{ConfigError, SimConfig};
pub use run::{Health, run};
