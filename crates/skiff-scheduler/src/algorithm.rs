//! One scheduling attempt's algorithm: PreFilter, then Filter over a
//! round-robin sample of nodes until enough feasible ones are found
//! (upstream's `percentageOfNodesToScore`: all nodes below 100, otherwise
//! `max(100, n × max(5, 50 − n/125) / 100)` unless configured), optionally on
//! several threads, then PreScore/Score and a random pick among the best.
//! On failure it builds upstream's `FitError` message.
//!
//! Pure computation over the [`Cache`]; no I/O.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use crate::cache::Cache;
use crate::framework::{CycleState, Framework, Status};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// Smallest number of feasible nodes searched for (upstream's minFeasibleNodesToFind).
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Below this many nodes to check, filtering stays on one thread.
const PARALLEL_THRESHOLD: usize = 512;

/// Why no node was chosen.
#[derive(Debug, Clone, Default)]
pub struct FitError {
    /// Nodes in the snapshot.
    pub num_all_nodes: usize,
    /// A PreFilter rejection, which applies to every node.
    pub pre_filter_msg: Option<String>,
    /// Each rejected node's status.
    pub statuses: HashMap<String, Status>,
    /// What PostFilter (preemption) said.
    pub post_filter_msg: Option<String>,
}

impl FitError {
    /// Upstream's message: "0/3 nodes are available: 3 Insufficient cpu.
    /// preemption: ...".
    pub fn message(&self) -> String {
        if self.num_all_nodes == 0 {
            return "no nodes available to schedule pods".to_string();
        }
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        match &self.pre_filter_msg {
            Some(m) => msg.push_str(&format!(" {m}.")),
            None => {
                let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
                for s in self.statuses.values() {
                    for r in &s.reasons {
                        *histogram.entry(r.as_str()).or_default() += 1;
                    }
                }
                let mut reasons: Vec<String> = histogram.iter().map(|(r, n)| format!("{n} {r}")).collect();
                reasons.sort();
                msg.push_str(&format!(" {}.", reasons.join(", ")));
            }
        }
        if let Some(m) = self.post_filter_msg.as_deref().filter(|m| !m.is_empty()) {
            msg.push_str(&format!(" {m}."));
        }
        msg
    }
}

/// How an attempt ended without a node.
#[derive(Debug, Clone)]
pub enum ScheduleError {
    /// No node fits.
    Fit(FitError),
    /// A plugin failed internally.
    Internal(String),
}

/// Sampling and tie-breaking state kept across attempts.
#[derive(Debug)]
pub struct Algorithm {
    next_start: usize,
    percentage: Option<u32>,
    parallelism: usize,
}

/// How many feasible nodes to look for among `n`.
pub fn num_feasible_nodes_to_find(n: usize, percentage: Option<u32>) -> usize {
    if n < MIN_FEASIBLE_NODES_TO_FIND || percentage.is_some_and(|p| p >= 100) {
        return n;
    }
    let pct = match percentage {
        Some(p) if p > 0 => p as usize,
        _ => (50usize.saturating_sub(n / 125)).max(5),
    };
    (n * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Feasible (position, node index) pairs and failures of one thread's chunk.
type ChunkResult = (Vec<(usize, usize)>, Vec<(usize, Status)>);

struct Found {
    feasible: Vec<usize>,
    failed: Vec<(usize, Status)>,
    processed: usize,
}

impl Algorithm {
    /// `percentage`: fixed percentageOfNodesToScore (None = adaptive);
    /// `parallelism`: threads used to filter large clusters.
    pub fn new(percentage: Option<u32>, parallelism: usize) -> Self {
        Algorithm {
            next_start: 0,
            percentage,
            parallelism: parallelism.max(1),
        }
    }

    /// Picks a node for `pod`, or says why none fits (PostFilter not run).
    pub fn schedule(
        &mut self,
        fw: &Framework,
        state: &mut CycleState,
        pod: &PodInfo,
        cache: &Cache,
    ) -> Result<String, ScheduleError> {
        let nodes = cache.nodes();
        let mut fit = FitError {
            num_all_nodes: nodes.len(),
            ..FitError::default()
        };
        if nodes.is_empty() {
            return Err(ScheduleError::Fit(fit));
        }
        let pre = fw.run_pre_filter(state, pod, nodes);
        if pre.code == crate::framework::Code::Error {
            return Err(ScheduleError::Internal(pre.message()));
        }
        if !pre.is_success() {
            fit.pre_filter_msg = Some(pre.message());
            return Err(ScheduleError::Fit(fit));
        }
        let want = num_feasible_nodes_to_find(nodes.len(), self.percentage);
        let found = self.find_feasible(fw, state, pod, nodes, want);
        self.next_start = (self.next_start + found.processed) % nodes.len();
        if found.feasible.is_empty() {
            if let Some((_, s)) = found
                .failed
                .iter()
                .find(|(_, s)| s.code == crate::framework::Code::Error)
            {
                return Err(ScheduleError::Internal(s.message()));
            }
            fit.statuses = found
                .failed
                .into_iter()
                .map(|(i, s)| (nodes[i].name.clone(), s))
                .collect();
            return Err(ScheduleError::Fit(fit));
        }
        if found.feasible.len() == 1 || !fw.has_score_plugins() {
            return Ok(nodes[found.feasible[0]].name.clone());
        }
        let feasible: Vec<&NodeInfo> = found.feasible.iter().map(|i| &nodes[*i]).collect();
        let pre = fw.run_pre_score(state, pod, &feasible, nodes);
        if !pre.is_success() {
            return Err(ScheduleError::Internal(pre.message()));
        }
        let totals = fw.run_score(state, pod, &feasible);
        Ok(feasible[select_host(&totals)].name.clone())
    }

    fn find_feasible(
        &self,
        fw: &Framework,
        state: &CycleState,
        pod: &PodInfo,
        nodes: &[NodeInfo],
        want: usize,
    ) -> Found {
        let n = nodes.len();
        let start = self.next_start % n;
        let order = |pos: usize| (start + pos) % n;
        if self.parallelism <= 1 || n < PARALLEL_THRESHOLD {
            let mut f = Found {
                feasible: Vec::new(),
                failed: Vec::new(),
                processed: n,
            };
            for pos in 0..n {
                let i = order(pos);
                let s = fw.run_filter(state, pod, &nodes[i]);
                if s.is_success() {
                    f.feasible.push(i);
                    if f.feasible.len() >= want {
                        f.processed = pos + 1;
                        break;
                    }
                } else {
                    f.failed.push((i, s));
                }
            }
            return f;
        }
        let found = AtomicUsize::new(0);
        let chunk = n.div_ceil(self.parallelism);
        let parts: Vec<ChunkResult> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.parallelism)
                .map(|t| {
                    let found = &found;
                    scope.spawn(move || {
                        let mut ok = Vec::new();
                        let mut failed = Vec::new();
                        for pos in (t * chunk)..((t + 1) * chunk).min(n) {
                            if found.load(Ordering::Relaxed) >= want {
                                break;
                            }
                            let i = order(pos);
                            let s = fw.run_filter(state, pod, &nodes[i]);
                            if s.is_success() {
                                ok.push((pos, i));
                                found.fetch_add(1, Ordering::Relaxed);
                            } else {
                                failed.push((i, s));
                            }
                        }
                        (ok, failed)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut f = Found {
            feasible: Vec::new(),
            failed: Vec::new(),
            processed: n,
        };
        for (ok, failed) in parts {
            for (pos, i) in ok {
                if f.feasible.len() < want {
                    f.feasible.push(i);
                    if f.feasible.len() == want {
                        f.processed = pos + 1;
                    }
                }
            }
            f.failed.extend(failed);
        }
        f
    }
}

/// Index of the highest total; ties broken uniformly at random.
pub fn select_host(totals: &[i64]) -> usize {
    let mut best = 0;
    let mut ties = 0u32;
    let mut rng = rand::rng();
    for (i, t) in totals.iter().enumerate() {
        if *t > totals[best] {
            best = i;
            ties = 1;
        } else if *t == totals[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests;
