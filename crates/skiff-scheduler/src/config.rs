//! [`SchedulerConfig`]: the scheduler's knobs, with defaults that match
//! upstream's behaviour where upstream has one.

use crate::plugins::ScoreWeights;
use crate::queue::QueueConfig;

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Only pods with this `spec.schedulerName` are scheduled
    /// (`default-scheduler`; pods without one are defaulted to it).
    pub scheduler_name: String,
    /// Threads that filter nodes in parallel on large clusters (upstream's
    /// `parallelism`, default 16; here the machine's cores, at most 16).
    pub parallelism: usize,
    /// Fixed `percentageOfNodesToScore`; `None` is upstream's adaptive
    /// default (50% − 1% per 125 nodes, at least 5%, at least 100 nodes).
    pub percentage_of_nodes_to_score: Option<u32>,
    /// Bindings in flight at once (the binding cycle is asynchronous).
    pub max_binds_in_flight: usize,
    /// API writes (events, status patches, evictions) in flight at once.
    pub max_side_effects_in_flight: usize,
    /// Whether to record a `Scheduled` event for every bound pod.
    pub record_scheduled_events: bool,
    /// Backoff and unschedulable timings.
    pub queue: QueueConfig,
    /// Score plugin weights.
    pub weights: ScoreWeights,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        SchedulerConfig {
            scheduler_name: "default-scheduler".to_string(),
            parallelism: cores.min(16),
            percentage_of_nodes_to_score: None,
            max_binds_in_flight: 512,
            max_side_effects_in_flight: 32,
            record_scheduled_events: true,
            queue: QueueConfig::default(),
            weights: ScoreWeights::default(),
        }
    }
}
