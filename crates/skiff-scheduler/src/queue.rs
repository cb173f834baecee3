//! The scheduling queue: `active` (ready to schedule, highest priority
//! first, then oldest), `backoff` (failed recently; waits 1s·2^(attempts-1),
//! capped at 10s) and `unschedulable` (waits for a cluster event that could
//! make it fit, or at most [`QueueConfig::max_unschedulable`]).
//!
//! A pod that fails while a move request (a relevant cluster event) happened
//! since it was popped goes to backoff rather than unschedulable, so no
//! event is lost between popping and failing. Time is passed in, so the
//! queue is deterministic under test.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pod_info::PodInfo;

/// Queue timings.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Backoff after the first failure.
    pub initial_backoff: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
    /// Longest a pod stays unschedulable without an event.
    pub max_unschedulable: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_unschedulable: Duration::from_secs(300),
        }
    }
}

/// A pod waiting in the queue.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    /// The pod.
    pub info: Arc<PodInfo>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it entered the queue first (for ordering and latency).
    pub enqueued: Instant,
    /// When it last failed.
    pub last_failure: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Active,
    Backoff,
    Unschedulable,
    InFlight,
}

#[derive(Debug)]
struct Entry {
    pod: QueuedPod,
    at: Where,
    seq: u64,
    backoff_until: Option<Instant>,
}

/// The three queues, keyed by `namespace/name`.
#[derive(Debug)]
pub struct SchedulingQueue {
    cfg: QueueConfig,
    entries: HashMap<String, Entry>,
    active: BTreeSet<(i64, u64, String)>,
    backoff: BTreeSet<(Instant, u64, String)>,
    unschedulable: HashSet<String>,
    seq: u64,
    move_cycle: u64,
    pop_cycle: u64,
    popped_at_cycle: HashMap<String, u64>,
    last_flush: Option<Instant>,
}

impl SchedulingQueue {
    /// An empty queue.
    pub fn new(cfg: QueueConfig) -> Self {
        SchedulingQueue {
            cfg,
            entries: HashMap::new(),
            active: BTreeSet::new(),
            backoff: BTreeSet::new(),
            unschedulable: HashSet::new(),
            seq: 0,
            move_cycle: 0,
            pop_cycle: 0,
            popped_at_cycle: HashMap::new(),
            last_flush: None,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn unlink(&mut self, key: &str) {
        if let Some(e) = self.entries.get(key) {
            match e.at {
                Where::Active => {
                    self.active
                        .remove(&(-i64::from(e.pod.info.priority), e.seq, key.to_string()));
                }
                Where::Backoff => {
                    if let Some(t) = e.backoff_until {
                        self.backoff.remove(&(t, e.seq, key.to_string()));
                    }
                }
                Where::Unschedulable => {
                    self.unschedulable.remove(key);
                }
                Where::InFlight => {}
            }
        }
    }

    fn put(&mut self, mut pod: QueuedPod, at: Where, now: Instant) {
        let key = pod.info.key.clone();
        self.unlink(&key);
        let seq = self.next_seq();
        let mut backoff_until = None;
        match at {
            Where::Active => {
                self.active
                    .insert((-i64::from(pod.info.priority), seq, key.clone()));
            }
            Where::Backoff => {
                let t = self.backoff_expiry(&pod).max(now);
                backoff_until = Some(t);
                self.backoff.insert((t, seq, key.clone()));
            }
            Where::Unschedulable => {
                pod.last_failure = pod.last_failure.or(Some(now));
                self.unschedulable.insert(key.clone());
            }
            Where::InFlight => {}
        }
        self.entries.insert(
            key,
            Entry {
                pod,
                at,
                seq,
                backoff_until,
            },
        );
    }

    fn backoff_expiry(&self, pod: &QueuedPod) -> Instant {
        let Some(failed) = pod.last_failure else {
            return Instant::now();
        };
        let exp = pod.attempts.saturating_sub(1).min(16);
        let d = self
            .cfg
            .initial_backoff
            .saturating_mul(1 << exp)
            .min(self.cfg.max_backoff);
        failed + d
    }

    /// Adds a new pending pod, or updates one already queued. An update of
    /// an unschedulable pod moves it to active when `spec_changed`.
    pub fn add_or_update(&mut self, info: Arc<PodInfo>, spec_changed: bool, now: Instant) {
        match self.entries.get_mut(&info.key) {
            None => {
                let pod = QueuedPod {
                    info,
                    attempts: 0,
                    enqueued: now,
                    last_failure: None,
                };
                self.put(pod, Where::Active, now);
            }
            Some(e) => {
                let at = e.at;
                let mut pod = e.pod.clone();
                pod.info = info;
                match at {
                    Where::Unschedulable if spec_changed => self.put(pod, Where::Active, now),
                    Where::Active => self.put(pod, Where::Active, now),
                    _ => {
                        if let Some(e) = self.entries.get_mut(&pod.info.key) {
                            e.pod = pod;
                        }
                    }
                }
            }
        }
    }

    /// Drops a pod (deleted, or bound by someone else).
    pub fn delete(&mut self, key: &str) {
        self.unlink(key);
        self.entries.remove(key);
        self.popped_at_cycle.remove(key);
    }

    /// Whether the queue knows `key` (in any sub-queue or in flight).
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Takes the best active pod; it stays known as "in flight" until
    /// [`Self::done`] or [`Self::requeue_failed`].
    pub fn pop(&mut self) -> Option<QueuedPod> {
        let (_, _, key) = self.active.pop_first()?;
        let e = self.entries.get_mut(&key)?;
        e.at = Where::InFlight;
        self.pop_cycle += 1;
        self.popped_at_cycle.insert(key, self.pop_cycle);
        Some(e.pod.clone())
    }

    /// The in-flight pod was scheduled (or given up); forget it.
    pub fn done(&mut self, key: &str) {
        self.delete(key);
    }

    /// The in-flight pod failed: to backoff if a move request came in since
    /// it was popped (or `to_backoff`), else to unschedulable.
    pub fn requeue_failed(&mut self, mut pod: QueuedPod, to_backoff: bool, now: Instant) {
        let key = pod.info.key.clone();
        if self.entries.get(&key).is_none_or(|e| e.at != Where::InFlight) {
            return;
        }
        pod.attempts += 1;
        pod.last_failure = Some(now);
        if let Some(e) = self.entries.get(&key) {
            pod.info = e.pod.info.clone();
        }
        let popped = self.popped_at_cycle.remove(&key).unwrap_or(0);
        let at = if to_backoff || self.move_cycle >= popped {
            Where::Backoff
        } else {
            Where::Unschedulable
        };
        self.put(pod, at, now);
    }

    /// A cluster event that may make unschedulable pods fit: move them all
    /// to backoff (or active when their backoff is over).
    pub fn move_all_to_active_or_backoff(&mut self, now: Instant) {
        self.move_cycle = self.pop_cycle;
        let keys: Vec<String> = self.unschedulable.iter().cloned().collect();
        for k in keys {
            self.move_unschedulable(&k, now);
        }
    }

    fn move_unschedulable(&mut self, key: &str, now: Instant) {
        let Some(pod) = self.entries.get(key).map(|e| e.pod.clone()) else {
            return;
        };
        let at = if self.backoff_expiry(&pod) > now {
            Where::Backoff
        } else {
            Where::Active
        };
        self.put(pod, at, now);
    }

    /// Moves pods whose backoff is over to active, and pods unschedulable
    /// for too long to active/backoff. Returns the next time something is due.
    pub fn tick(&mut self, now: Instant) -> Option<Instant> {
        while let Some((t, _, _)) = self.backoff.first() {
            if *t > now {
                break;
            }
            let Some((_, _, key)) = self.backoff.pop_first() else {
                break;
            };
            if let Some(pod) = self.entries.get(&key).map(|e| e.pod.clone()) {
                self.put(pod, Where::Active, now);
            }
        }
        if self
            .last_flush
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return self.backoff.first().map(|(t, _, _)| *t);
        }
        self.last_flush = Some(now);
        let stale: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|k| {
                self.entries.get(*k).is_some_and(|e| {
                    e.pod
                        .last_failure
                        .is_some_and(|t| now.duration_since(t) >= self.cfg.max_unschedulable)
                })
            })
            .cloned()
            .collect();
        for k in stale {
            self.move_unschedulable(&k, now);
        }
        self.backoff.first().map(|(t, _, _)| *t)
    }

    /// Pods ready to schedule.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// (active, backoff, unschedulable) sizes.
    pub fn lens(&self) -> (usize, usize, usize) {
        (self.active.len(), self.backoff.len(), self.unschedulable.len())
    }
}

#[cfg(test)]
mod tests;
