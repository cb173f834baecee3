//! CPU time of a process (user + system), read from `/proc/PID/stat`, so a
//! phase can report how much CPU the server and the benchmark itself spent
//! per operation: a figure that other load on the machine disturbs far less
//! than latency. Linux only; reads, never signals.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::error::BenchError;
use crate::stats;

/// Clock ticks per second of `/proc/PID/stat` times (`USER_HZ`, fixed at 100
/// in the Linux ABI).
const USER_HZ: u64 = 100;

/// User + system CPU time `pid` has used so far.
pub fn used(pid: u32) -> Result<Duration, BenchError> {
    let path = PathBuf::from(format!("/proc/{pid}/stat"));
    let text = std::fs::read_to_string(&path).map_err(|source| BenchError::Proc { path, source })?;
    parse_stat(&text).ok_or(BenchError::NoCpu(pid))
}

/// User + system time of this benchmark process.
pub fn used_by_self() -> Result<Duration, BenchError> {
    used(std::process::id())
}

/// Parses a `/proc/PID/stat` line: utime and stime are the 14th and 15th
/// fields; the 2nd (the command) may contain spaces and parentheses, so
/// fields are counted after its last `)`.
pub fn parse_stat(text: &str) -> Option<Duration> {
    let after_comm = &text[text.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime.checked_add(stime)?;
    Some(Duration::from_millis(ticks.checked_mul(1000 / USER_HZ)?))
}

/// CPU spent by the server and by the benchmark itself during one phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuUse {
    /// Which phase.
    pub phase: String,
    /// Requests the phase made (the per-operation divisor).
    pub ops: usize,
    /// Server CPU in ms, when `--server-pid` was given and readable.
    pub server_ms: Option<f64>,
    /// This benchmark's CPU in ms.
    pub client_ms: Option<f64>,
}

/// CPU readings taken at the start of a phase.
pub struct Meter {
    server_pid: Option<u32>,
    server: Option<Duration>,
    client: Option<Duration>,
}

impl Meter {
    /// Reads the server's (if any) and this process's CPU time now.
    pub fn start(server_pid: Option<u32>) -> Self {
        Self {
            server_pid,
            server: server_pid.and_then(|pid| used(pid).ok()),
            client: used_by_self().ok(),
        }
    }

    /// What was spent since [`Meter::start`], for a phase of `ops` requests.
    pub fn finish(self, phase: impl Into<String>, ops: usize) -> CpuUse {
        let delta = |before: Option<Duration>, after: Option<Duration>| {
            Some(stats::millis(after?.saturating_sub(before?)))
        };
        CpuUse {
            phase: phase.into(),
            ops,
            server_ms: delta(self.server, self.server_pid.and_then(|pid| used(pid).ok())),
            client_ms: delta(self.client, used_by_self().ok()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sums_user_and_system_ticks() {
        let line = "4242 (skiff) S 1 4242 4242 0 -1 4194560 5210 0 0 0 150 37 0 0 20 0 9 0 100 1 2\n";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(1870)));
    }

    #[test]
    fn a_command_with_spaces_and_parentheses_does_not_shift_fields() {
        let line = "7 (tokio (rt) w) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 5 1 2\n";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(70)));
    }

    #[test]
    fn a_meter_without_a_server_measures_only_the_client() {
        let use_ = Meter::start(None).finish("x", 3);
        assert_eq!((use_.phase.as_str(), use_.ops, use_.server_ms), ("x", 3, None));
        assert!(use_.client_ms.is_some());
        let with_server = Meter::start(Some(std::process::id())).finish("y", 1);
        assert!(with_server.server_ms.is_some());
    }

    #[test]
    fn truncated_lines_are_rejected() {
        assert_eq!(parse_stat("7 (x) R 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu_and_the_count_only_grows() {
        let before = used_by_self().unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(used_by_self().unwrap() >= before);
    }
}
