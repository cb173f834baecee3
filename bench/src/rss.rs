//! Resident memory of another process, read from `/proc/PID/status`
//! (`VmRSS`, and the peak `VmHWM`). Linux only; reads, never signals.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::BenchError;

/// Memory figures of one process at one moment, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemSample {
    /// Current resident set size (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size so far (`VmHWM`), when the kernel reports it.
    pub hwm_kib: Option<u64>,
}

/// Reads the memory figures of process `pid`.
pub fn sample(pid: u32) -> Result<MemSample, BenchError> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let text = std::fs::read_to_string(&path).map_err(|source| BenchError::Proc { path, source })?;
    parse_status(&text).ok_or(BenchError::NoRss(pid))
}

/// Parses the text of a `/proc/PID/status` file; `None` without a `VmRSS` line
/// (kernel threads, zombies).
pub fn parse_status(text: &str) -> Option<MemSample> {
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            let mut parts = rest.split_whitespace();
            let value = parts.next()?.parse::<u64>().ok()?;
            match parts.next() {
                Some("kB") | None => Some(value),
                Some(_) => None,
            }
        })
    };
    Some(MemSample {
        rss_kib: field("VmRSS")?,
        hwm_kib: field("VmHWM"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tskiff\nUmask:\t0022\nState:\tS (sleeping)\n\
        VmPeak:\t  812340 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t5\n";

    #[test]
    fn reads_rss_and_peak_in_kib() {
        let s = parse_status(STATUS).unwrap();
        assert_eq!(
            s,
            MemSample {
                rss_kib: 40960,
                hwm_kib: Some(51200)
            }
        );
    }

    #[test]
    fn a_process_without_memory_lines_has_no_sample() {
        assert_eq!(parse_status("Name:\tkthreadd\nState:\tS (sleeping)\n"), None);
    }

    #[test]
    fn does_not_confuse_similar_field_names() {
        let s = parse_status("VmRSSX:\t1 kB\nVmRSS:\t2 kB\n").unwrap();
        assert_eq!(s.rss_kib, 2);
        assert_eq!(s.hwm_kib, None);
    }

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
    }

    #[test]
    fn a_missing_process_is_an_error() {
        assert!(matches!(sample(u32::MAX), Err(BenchError::Proc { .. })));
    }
}
