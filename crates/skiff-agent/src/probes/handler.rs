//! Lifecycle hook handlers (postStart, preStop) as kubelet runs them: `exec`
//! in the container through CRI ExecSync (a non-zero exit is an error),
//! `httpGet` to the pod (any answer completes the hook; only a failed
//! exchange is an error), `sleep` for the given seconds. Everything is
//! bounded by the caller's timeout (for preStop: the grace period).
//! Owns running one hook; the caller records FailedPostStartHook /
//! FailedPreStopHook events and decides what a failure means.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerPort, LifecycleHandler};

use super::action::{self, Outcome, Target};
use super::http;
use crate::CriClient;

/// Why a hook failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandlerError {
    /// The exec command exited non-zero or timed out.
    #[error("command '{command}' failed: {output}")]
    Exec {
        /// The command, joined with spaces.
        command: String,
        /// Its combined output, or why it was cut short.
        output: String,
    },
    /// The HTTP exchange failed (refused, reset, timed out).
    #[error("{0}")]
    Http(String),
    /// The runtime could not run the command.
    #[error("{0}")]
    Runtime(String),
    /// The handler names no action, or one skiff cannot run.
    #[error("invalid lifecycle handler: {0}")]
    Invalid(String),
    /// The hook did not finish within its time.
    #[error("lifecycle hook did not finish within {0:?}")]
    Timeout(Duration),
}

/// Runs `handler` for the container `container_id`; named ports cannot be
/// resolved this way (use [`run_handler_with_ports`]).
pub async fn run_handler(
    cri: &CriClient,
    container_id: &str,
    pod_ip: Option<&str>,
    handler: &LifecycleHandler,
    timeout: Duration,
) -> Result<(), HandlerError> {
    run_handler_with_ports(cri, container_id, pod_ip, handler, timeout, &[]).await
}

/// [`run_handler`] with the container's ports, so `port: http` resolves.
pub async fn run_handler_with_ports(
    cri: &CriClient,
    container_id: &str,
    pod_ip: Option<&str>,
    handler: &LifecycleHandler,
    timeout: Duration,
    ports: &[ContainerPort],
) -> Result<(), HandlerError> {
    let target = Target {
        cri,
        container_id,
        pod_ip,
        ports,
    };
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default().join(" ");
        return match action::exec(target, exec, timeout).await {
            Outcome::Success(_) | Outcome::Warning(_) => Ok(()),
            Outcome::Failure(output) => Err(HandlerError::Exec { command, output }),
            Outcome::Error(e) => Err(HandlerError::Runtime(e)),
        };
    }
    if let Some(get) = &handler.http_get {
        let request = action::http_target(target, get).map_err(HandlerError::Invalid)?;
        return match tokio::time::timeout(timeout, http::follow(request)).await {
            Err(_) => Err(HandlerError::Timeout(timeout)),
            Ok(Err(e)) => Err(HandlerError::Http(e)),
            Ok(Ok(_)) => Ok(()),
        };
    }
    if let Some(sleep) = &handler.sleep {
        let secs = u64::try_from(sleep.seconds).unwrap_or_default();
        tokio::time::sleep(Duration::from_secs(secs).min(timeout)).await;
        return Ok(());
    }
    if handler.tcp_socket.is_some() {
        return Err(HandlerError::Invalid(
            "tcpSocket hooks are not supported".to_string(),
        ));
    }
    Err(HandlerError::Invalid("no action set".to_string()))
}
