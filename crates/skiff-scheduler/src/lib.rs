//! skiff-scheduler: places pending pods on nodes.
//!
//! Owns: the scheduling framework (one trait per extension point: PreFilter,
//! Filter, PostFilter, PreScore, Score, Reserve, Bind), the scheduling queue
//! with backoff, the cluster snapshot the plugins read, and one file per
//! plugin under [`plugins`].
//!
//! Must not: reach the store directly; it watches pods, nodes and
//! PriorityClasses and binds through the `pods/binding` subresource of the
//! public API, so it runs against any Kubernetes API server.
//!
//! Performance design: the loop owns the cache and updates it one event at
//! a time (no snapshot rebuilds); pods carry pre-computed requests and
//! compiled selectors; only a sample of nodes is filtered
//! ([`algorithm::num_feasible_nodes_to_find`], upstream's
//! percentageOfNodesToScore: all nodes under 100, else
//! `max(100, n·max(5, 50 − n/125)%)`); bindings run concurrently as tasks;
//! events and status patches go through a separate worker.

pub mod algorithm;
pub mod cache;
pub mod config;
pub mod effects;
pub mod error;
pub mod framework;
pub mod labels;
pub mod node_info;
pub mod plugins;
pub mod pod_info;
pub mod quantity;
pub mod queue;
pub mod resources;
mod run;
pub mod scheduler;

#[cfg(test)]
mod test_util;

pub use config::SchedulerConfig;
pub use error::Error;
pub use run::{run, run_with};
