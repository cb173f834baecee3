//! Latency statistics: turns a set of measured durations into the summary the
//! benchmarks report (count, mean, p50, p99, max) and a throughput figure.
//! Pure arithmetic; it never measures anything itself.

use std::time::Duration;

use serde::Serialize;

/// Summary of a set of latency samples, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: usize,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median (nearest-rank).
    pub p50_ms: f64,
    /// 99th percentile (nearest-rank).
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises `samples`; `None` when there are no samples.
    pub fn from_samples(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<Duration> = samples.to_vec();
        sorted.sort_unstable();
        let total: Duration = sorted.iter().sum();
        let count = sorted.len();
        let max = sorted[count - 1];
        Some(Self {
            count,
            mean_ms: millis(total) / count as f64,
            p50_ms: millis(percentile(&sorted, 50.0)),
            p99_ms: millis(percentile(&sorted, 99.0)),
            max_ms: millis(max),
        })
    }
}

/// Nearest-rank percentile of an ascending, non-empty slice: the smallest
/// sample such that at least `p` percent of samples are <= it.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// Operations per second for `ops` completed in `elapsed`; 0 when nothing elapsed.
pub fn per_second(ops: usize, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 { 0.0 } else { ops as f64 / secs }
}

/// A duration as fractional milliseconds.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn empty_samples_have_no_summary() {
        assert_eq!(LatencySummary::from_samples(&[]), None);
    }

    #[test]
    fn single_sample_is_every_percentile() {
        let s = LatencySummary::from_samples(&[ms(7)]).unwrap();
        assert_eq!(
            (s.count, s.p50_ms, s.p99_ms, s.max_ms, s.mean_ms),
            (1, 7.0, 7.0, 7.0, 7.0)
        );
    }

    #[test]
    fn percentiles_use_nearest_rank_on_unsorted_input() {
        // 1..=100 ms shuffled: p50 is 50 ms, p99 is 99 ms, max 100 ms.
        let mut samples: Vec<Duration> = (1..=100).map(ms).collect();
        samples.reverse();
        samples.swap(3, 77);
        let s = LatencySummary::from_samples(&samples).unwrap();
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
    }

    #[test]
    fn p99_of_small_sets_is_the_maximum() {
        let s = LatencySummary::from_samples(&[ms(1), ms(2), ms(3), ms(40)]).unwrap();
        assert_eq!(s.p50_ms, 2.0);
        assert_eq!(s.p99_ms, 40.0);
    }

    #[test]
    fn one_slow_outlier_in_a_thousand_does_not_move_p99() {
        let mut samples = vec![ms(2); 999];
        samples.push(ms(5000));
        let s = LatencySummary::from_samples(&samples).unwrap();
        assert_eq!(s.p99_ms, 2.0);
        assert_eq!(s.max_ms, 5000.0);
    }

    #[test]
    fn throughput_is_ops_over_seconds() {
        assert_eq!(per_second(500, ms(250)), 2000.0);
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
    }
}
