//! Keeps a long-running agent loop (service proxy, pod routes) alive: when
//! it ends or fails, the error is logged and the loop restarts after an
//! exponential back-off, so one broken feature never stops the agent.
//!
//! Owns only the restart policy; the loops themselves live in their modules.

use std::future::Future;
use std::time::{Duration, Instant};

/// First wait before a restart.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run this long counts as healthy: the back-off starts over.
const HEALTHY_RUN: Duration = Duration::from_secs(120);

/// The wait before the next restart, given the last wait and how long the
/// last run lasted: doubling from `first`, capped, reset by a healthy run.
pub fn next_backoff(last: Option<Duration>, ran_for: Duration, first: Duration) -> Duration {
    match last {
        Some(last) if ran_for < HEALTHY_RUN => (last * 2).clamp(first, MAX_BACKOFF),
        _ => first,
    }
}

/// Runs `make()` forever: each time the future it returns completes, logs
/// the outcome under `what` and starts it again after a back-off.
pub async fn supervise<F, Fut, E>(what: &'static str, make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    supervise_from(what, FIRST_BACKOFF, make).await
}

async fn supervise_from<F, Fut, E>(what: &'static str, first: Duration, mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut backoff = None;
    loop {
        let started = Instant::now();
        match make().await {
            Ok(()) => tracing::warn!(task = what, "agent task ended; restarting"),
            Err(err) => tracing::warn!(task = what, error = %err, "agent task failed; restarting"),
        }
        let wait = next_backoff(backoff, started.elapsed(), first);
        backoff = Some(wait);
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap_and_resets_after_a_healthy_run() {
        let (quick, first) = (Duration::from_millis(10), FIRST_BACKOFF);
        assert_eq!(next_backoff(None, quick, first), first);
        assert_eq!(next_backoff(Some(first), quick, first), first * 2);
        assert_eq!(
            next_backoff(Some(Duration::from_secs(50)), quick, first),
            MAX_BACKOFF
        );
        assert_eq!(next_backoff(Some(MAX_BACKOFF), HEALTHY_RUN, first), first);
    }

    #[tokio::test]
    async fn a_failing_task_is_restarted_not_fatal() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let first = Duration::from_millis(5);
        let task = tokio::spawn(supervise_from("test", first, move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>("boom")
            }
        }));
        // 5 + 10 + 20 ms of back-off: at least three runs within a second.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(runs.load(Ordering::SeqCst) >= 3);
        assert!(!task.is_finished());
        task.abort();
    }
}
