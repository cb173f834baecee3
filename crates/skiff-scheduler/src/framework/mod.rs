//! The scheduling framework: one trait per extension point (as upstream's
//! `framework/interface.go`), the [`Status`] they return, the per-attempt
//! [`CycleState`], and the [`Framework`] that runs registered plugins in
//! order with their score weights.
//!
//! Plugins are pure functions of the pod, the cluster snapshot and the cycle
//! state; the only extension point that does I/O is Bind, which returns a
//! future the scheduler drives off the scheduling thread.

mod cycle_state;
mod runtime;
mod status;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

pub use cycle_state::CycleState;
pub use runtime::Framework;
pub use status::{Code, Status};

use crate::cache::Cache;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// Highest score a Score plugin may give after normalisation.
pub const MAX_NODE_SCORE: i64 = 100;

/// What every plugin has.
pub trait Plugin: Send + Sync {
    /// The plugin's name, as upstream names it ("NodeResourcesFit").
    fn name(&self) -> &'static str;
}

/// Runs once per attempt before any node is filtered; may reject the pod
/// outright, leave pre-computed data in the state, or return Skip so its
/// Filter is not called.
pub trait PreFilterPlugin: Plugin {
    /// Pre-computes for `pod` over all `nodes`.
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, nodes: &[NodeInfo]) -> Status;
}

/// Decides whether one node can run the pod.
pub trait FilterPlugin: Plugin {
    /// Success, or why `node` cannot take `pod`.
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// What a PostFilter plugin proposes when no node fits.
#[derive(Debug, Clone, Default)]
pub struct PostFilterResult {
    /// The node the pod should go to once the victims are gone.
    pub nominated_node: Option<String>,
    /// Pods to evict to make room.
    pub victims: Vec<Arc<PodInfo>>,
}

/// Input of a PostFilter plugin.
pub struct PostFilterInput<'a> {
    /// The attempt's state after PreFilter.
    pub state: &'a CycleState,
    /// The pod that did not fit.
    pub pod: &'a PodInfo,
    /// The cluster snapshot.
    pub cache: &'a Cache,
    /// Why each node was rejected, by node name.
    pub statuses: &'a HashMap<String, Status>,
    /// The framework, to re-run filters on simulated nodes.
    pub framework: &'a Framework,
}

/// Runs when no node passed the filters (preemption).
pub trait PostFilterPlugin: Plugin {
    /// A nomination (Success) or why nothing helps (Unschedulable, with a
    /// message for the event).
    fn post_filter(&self, input: &PostFilterInput<'_>) -> (Option<PostFilterResult>, Status);
}

/// Runs once per attempt before scoring, with the feasible nodes.
pub trait PreScorePlugin: Plugin {
    /// Pre-computes scoring data; Skip means the plugin's Score is not called.
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        feasible: &[&NodeInfo],
        all: &[NodeInfo],
    ) -> Status;
}

/// Ranks feasible nodes.
pub trait ScorePlugin: Plugin {
    /// A raw score for `node`.
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64;

    /// Maps raw scores into `0..=MAX_NODE_SCORE` in place. The default keeps
    /// them (for plugins whose raw scores are already in range).
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) {}
}

/// Reserves per-node resources a plugin manages, and releases them when a
/// later step fails.
pub trait ReservePlugin: Plugin {
    /// Reserves `node` for `pod`.
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status;
    /// Undoes [`ReservePlugin::reserve`]; must be idempotent.
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str);
}

/// Writes the decision to the cluster.
pub trait BindPlugin: Plugin {
    /// Binds `pod` to `node`; Skip lets the next binder try.
    fn bind(&self, pod: Arc<PodInfo>, node: String) -> BoxFuture<'static, Status>;
}

/// Upstream's default normalisation: scale so the highest score becomes
/// [`MAX_NODE_SCORE`]; with `reverse`, lower raw scores rank higher.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = MAX_NODE_SCORE * *s / max;
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}

/// Min-max normalisation into `0..=MAX_NODE_SCORE` (for signed raw scores).
pub fn min_max_normalize(scores: &mut [i64]) {
    let (Some(min), Some(max)) = (scores.iter().min().copied(), scores.iter().max().copied()) else {
        return;
    };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 {
            MAX_NODE_SCORE * (*s - min) / diff
        } else {
            0
        };
    }
}
