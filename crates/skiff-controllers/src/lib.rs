//! skiff-controllers: the reconcile loops that keep the cluster at its
//! declared state — one module per controller, each run on kube-runtime's
//! `Controller` (or a watcher loop) through the public Kubernetes API only.
//!
//! Owns: workload controllers (ReplicaSet, ReplicationController, Deployment,
//! DaemonSet, StatefulSet, Job, CronJob), cluster controllers (garbage
//! collector, namespace lifecycle, node lifecycle, node IPAM, endpoints,
//! endpointslices, service accounts, resource quota, pod GC, disruption), and
//! the [`manager`] that runs them under leader election.
//!
//! Must not: reach the store or the runtime directly; everything goes through
//! a `kube::Client`.

pub mod cronjob;
pub mod csr;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod events;
pub mod gc;
pub mod informer;
pub mod job;
pub mod leader;
pub mod manager;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod root_ca_publisher;
pub mod serviceaccount;
pub mod statefulset;
pub mod workload_util;

pub use manager::{ControllerConfig, Error, run_all};
