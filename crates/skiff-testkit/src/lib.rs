//! skiff-testkit: fixtures for tests that need real components — an etcd
//! server, a `skiff server` process, and the real `kubectl` — each started on
//! its own loopback ports and data dirs and torn down on drop, even on failure —
//! and a real node (containerd of the test's own) for the agent's tests.
//!
//! Test-only: no production crate depends on this.

pub mod etcd;
pub mod kubectl;
pub mod netns;
pub mod node;
pub mod poll;
pub mod server;
