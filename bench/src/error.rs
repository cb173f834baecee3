//! The benchmark's error type: everything that can stop a run (bad
//! kubeconfig, a target that is not loopback, API failures outside the
//! measured requests, /proc reads).

use std::path::PathBuf;

/// Why a benchmark run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The kubeconfig could not be read or has no usable context.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file given with `--kubeconfig`.
        path: PathBuf,
        /// What kube-rs said about it.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig points somewhere other than this machine's loopback.
    #[error("refusing to load {0}: only loopback API servers (127.0.0.0/8, ::1, localhost) are benchmarked")]
    NotLoopback(String),
    /// A request outside the measured ones (set-up, clean-up) failed.
    #[error("{what}: {source}")]
    Api {
        /// What the benchmark was doing.
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A response did not have the expected shape.
    #[error("unexpected response to {what}: {detail}")]
    Response {
        /// What the benchmark was doing.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// A phase did not finish within its time bound.
    #[error("{0} did not finish within {1} s")]
    Timeout(String, u64),
    /// A `/proc` file could not be read.
    #[error("reading {path}: {source}")]
    Proc {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `/proc/PID/stat` could not be parsed.
    #[error("process {0} reports no CPU times")]
    NoCpu(u32),
    /// `/proc/PID/status` had no `VmRSS` line.
    #[error("process {0} reports no VmRSS")]
    NoRss(u32),
}

impl BenchError {
    /// Wraps a client error with what the benchmark was doing.
    pub fn api(what: impl Into<String>, source: kube::Error) -> Self {
        Self::Api {
            what: what.into(),
            source,
        }
    }
}
