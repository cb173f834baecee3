//! The kubelet's restart back-off: the first restart of a container is
//! immediate, then each restart waits 10 s, doubling up to 300 s, measured
//! from when the container last finished; a container that ran 10 minutes
//! starts over. Also used between failed image pulls.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;

/// First back-off delay.
pub const INITIAL: Duration = Duration::from_secs(10);
/// Longest back-off delay.
pub const MAX: Duration = Duration::from_secs(300);
/// A container that ran this long resets its back-off.
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// Back-off delays per key (a container name).
#[derive(Debug, Default)]
pub struct Backoff {
    delays: HashMap<String, Duration>,
}

/// A restart that must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InBackoff {
    /// The current delay (shown in the CrashLoopBackOff message).
    pub delay: Duration,
    /// Time left until the restart may happen.
    pub remaining: Duration,
}

impl Backoff {
    /// Decides whether `key`, which finished at `finished` after running for
    /// `ran`, may restart `now`. When it may, the next delay is recorded.
    pub fn try_restart(
        &mut self,
        key: &str,
        finished: Timestamp,
        ran: Duration,
        now: Timestamp,
    ) -> Result<(), InBackoff> {
        if ran >= RESET_AFTER {
            self.delays.remove(key);
        }
        let since = now.duration_since(finished).unsigned_abs();
        if let Some(&delay) = self.delays.get(key) {
            if since < delay {
                return Err(InBackoff {
                    delay,
                    remaining: delay - since,
                });
            }
            self.delays.insert(key.to_string(), (delay * 2).min(MAX));
        } else {
            self.delays.insert(key.to_string(), INITIAL);
        }
        Ok(())
    }

    /// The delay `key` is at, if it has one.
    pub fn delay(&self, key: &str) -> Option<Duration> {
        self.delays.get(key).copied()
    }

    /// Forgets `key` (the container is gone from the spec, or succeeded).
    pub fn reset(&mut self, key: &str) {
        self.delays.remove(key);
    }
}

/// `10s`, `2m40s`, `5m0s`: a duration as Go prints it in the kubelet's messages.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn first_restart_is_immediate_then_delays_double_to_the_cap() {
        let mut b = Backoff::default();
        let short = Duration::from_secs(1);
        assert!(b.try_restart("c", at(0), short, at(0)).is_ok());
        let wait = b.try_restart("c", at(1), short, at(3)).unwrap_err();
        assert_eq!((wait.delay, wait.remaining), (INITIAL, Duration::from_secs(8)));
        assert!(b.try_restart("c", at(1), short, at(11)).is_ok());
        assert_eq!(b.delay("c"), Some(Duration::from_secs(20)));
        for _ in 0..10 {
            let d = b.delay("c").unwrap_or_default();
            assert!(b.try_restart("c", at(0), short, at(0) + d).is_ok());
        }
        assert_eq!(b.delay("c"), Some(MAX));
    }

    #[test]
    fn a_long_run_resets_the_delay() {
        let mut b = Backoff::default();
        let short = Duration::from_secs(1);
        assert!(b.try_restart("c", at(0), short, at(0)).is_ok());
        assert!(b.try_restart("c", at(100), short, at(115)).is_ok());
        assert_eq!(b.delay("c"), Some(Duration::from_secs(20)));
        assert!(b.try_restart("c", at(1000), RESET_AFTER, at(1000)).is_ok());
        assert_eq!(b.delay("c"), Some(INITIAL));
        assert_eq!(go_duration(Duration::from_secs(160)), "2m40s");
    }
}
