//! End-to-end tests: the real kubectl drives a real `skiff server`, each
//! scenario once on embedded SQLite and once on etcd (`sqlite::*`, `etcd::*`).
//! Assertions are on what a user sees: kubectl's stdout, stderr and exit code.

// Test code: a failed unwrap is a failed test, with the error in the message.
#![allow(clippy::unwrap_used)]

mod apply;
mod crash;
mod create;
mod errors;
mod get;
mod mutate;
mod python;
mod watch;
