//! The scheduler's error type.

/// Why [`crate::run`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A watch stream ended, which kube-runtime's watcher never does on its own.
    #[error("the {0} watch stream ended")]
    StreamEnded(&'static str),
}
