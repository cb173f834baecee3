//! Polling for end-to-end tests: wait until a condition holds, or fail the
//! test with what was awaited. The one copy the tests' common modules share.

use std::time::{Duration, Instant};

/// How often [`wait_for`] asks again.
const INTERVAL: Duration = Duration::from_millis(250);

/// Calls `f` every 250 ms until it returns `Some`, and returns that value;
/// panics (failing the test) with `what` once `timeout` has passed.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value_that_is_there() {
        let mut calls = 0;
        let v = wait_for(Duration::from_secs(5), "the third call", || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(v, 3);
    }

    #[test]
    #[should_panic(expected = "timed out after 300ms waiting for nothing")]
    fn fails_the_test_after_the_timeout() {
        wait_for(Duration::from_millis(300), "nothing", || None::<()>);
    }
}
