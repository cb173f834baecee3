//! skiff-scheduler: places pending pods on nodes.
//!
//! Owns: the scheduling framework (one trait per extension point: PreFilter,
//! Filter, PostFilter, PreScore, Score, Reserve, Bind), the scheduling queue
//! with backoff, the cluster snapshot the plugins read, and one file per
//! plugin under [`plugins`].
//!
//! Must not: reach the store directly; it watches pods and nodes and binds
//! through the `pods/binding` subresource of the public API.
