//! [`Framework`]: the registered plugins of each extension point and the
//! code that runs them in order (first rejection wins for filters; weighted
//! sums for scores).

use std::sync::Arc;

use super::{
    BindPlugin, Code, CycleState, FilterPlugin, MAX_NODE_SCORE, PostFilterInput, PostFilterPlugin,
    PostFilterResult, PreFilterPlugin, PreScorePlugin, ReservePlugin, ScorePlugin, Status,
};
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

/// Plugins per extension point, in registration order.
#[derive(Default, Clone)]
pub struct Framework {
    pre_filter: Vec<Arc<dyn PreFilterPlugin>>,
    filter: Vec<Arc<dyn FilterPlugin>>,
    post_filter: Vec<Arc<dyn PostFilterPlugin>>,
    pre_score: Vec<Arc<dyn PreScorePlugin>>,
    score: Vec<(Arc<dyn ScorePlugin>, i64)>,
    reserve: Vec<Arc<dyn ReservePlugin>>,
    bind: Vec<Arc<dyn BindPlugin>>,
}

impl std::fmt::Debug for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framework")
            .field(
                "filter",
                &self.filter.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field(
                "score",
                &self.score.iter().map(|(p, w)| (p.name(), *w)).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Framework {
    /// A framework with no plugins.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a PreFilter plugin.
    pub fn pre_filter(mut self, p: Arc<dyn PreFilterPlugin>) -> Self {
        self.pre_filter.push(p);
        self
    }

    /// Registers a Filter plugin.
    pub fn filter(mut self, p: Arc<dyn FilterPlugin>) -> Self {
        self.filter.push(p);
        self
    }

    /// Registers a PostFilter plugin.
    pub fn post_filter(mut self, p: Arc<dyn PostFilterPlugin>) -> Self {
        self.post_filter.push(p);
        self
    }

    /// Registers a PreScore plugin.
    pub fn pre_score(mut self, p: Arc<dyn PreScorePlugin>) -> Self {
        self.pre_score.push(p);
        self
    }

    /// Registers a Score plugin with its weight (0 disables it).
    pub fn score(mut self, p: Arc<dyn ScorePlugin>, weight: i64) -> Self {
        if weight > 0 {
            self.score.push((p, weight));
        }
        self
    }

    /// Registers a Reserve plugin.
    pub fn reserve(mut self, p: Arc<dyn ReservePlugin>) -> Self {
        self.reserve.push(p);
        self
    }

    /// Registers a Bind plugin.
    pub fn bind(mut self, p: Arc<dyn BindPlugin>) -> Self {
        self.bind.push(p);
        self
    }

    /// Whether any Score plugin is registered.
    pub fn has_score_plugins(&self) -> bool {
        !self.score.is_empty()
    }

    /// Runs PreFilter plugins; the first rejection or error is returned.
    /// Skips are remembered so the plugin's Filter is not run.
    pub fn run_pre_filter(&self, state: &mut CycleState, pod: &PodInfo, nodes: &[NodeInfo]) -> Status {
        for p in &self.pre_filter {
            let s = p.pre_filter(state, pod, nodes);
            match s.code {
                Code::Success => {}
                Code::Skip => {
                    for (i, f) in self.filter.iter().enumerate() {
                        if f.name() == p.name() {
                            state.skip_filter(i);
                        }
                    }
                }
                _ => return s.with_plugin(p.name()),
            }
        }
        Status::success()
    }

    /// Runs Filter plugins on one node; the first non-success is returned.
    pub fn run_filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for (i, p) in self.filter.iter().enumerate() {
            if state.skips_filter(i) {
                continue;
            }
            let s = p.filter(state, pod, node);
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Runs PostFilter plugins until one succeeds; otherwise returns the
    /// last plugin's message.
    pub fn run_post_filter(&self, input: &PostFilterInput<'_>) -> (Option<PostFilterResult>, Status) {
        let mut last = Status::new(Code::Unschedulable, "");
        for p in &self.post_filter {
            let (result, s) = p.post_filter(input);
            if s.is_success() {
                return (result, s.with_plugin(p.name()));
            }
            last = s.with_plugin(p.name());
        }
        (None, last)
    }

    /// Runs PreScore plugins.
    pub fn run_pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        feasible: &[&NodeInfo],
        all: &[NodeInfo],
    ) -> Status {
        for p in &self.pre_score {
            let s = p.pre_score(state, pod, feasible, all);
            match s.code {
                Code::Success => {}
                Code::Skip => {
                    for (i, (f, _)) in self.score.iter().enumerate() {
                        if f.name() == p.name() {
                            state.skip_score(i);
                        }
                    }
                }
                _ => return s.with_plugin(p.name()),
            }
        }
        Status::success()
    }

    /// Weighted sum of every Score plugin's normalised score, per node.
    pub fn run_score(&self, state: &CycleState, pod: &PodInfo, feasible: &[&NodeInfo]) -> Vec<i64> {
        let mut totals = vec![0i64; feasible.len()];
        let mut scores = vec![0i64; feasible.len()];
        for (i, (p, weight)) in self.score.iter().enumerate() {
            if state.skips_score(i) {
                continue;
            }
            for (s, node) in scores.iter_mut().zip(feasible) {
                *s = p.score(state, pod, node);
            }
            p.normalize(state, pod, &mut scores);
            for (t, s) in totals.iter_mut().zip(&scores) {
                *t += (*s).clamp(0, MAX_NODE_SCORE) * weight;
            }
        }
        totals
    }

    /// Runs Reserve plugins; on a failure, unreserves those that ran.
    pub fn run_reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for (i, p) in self.reserve.iter().enumerate() {
            let s = p.reserve(state, pod, node);
            if !s.is_success() {
                for q in self.reserve[..=i].iter().rev() {
                    q.unreserve(state, pod, node);
                }
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Runs every Reserve plugin's Unreserve, in reverse order.
    pub fn run_unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            p.unreserve(state, pod, node);
        }
    }

    /// Binds through the first Bind plugin that does not Skip.
    pub async fn run_bind(binders: Vec<Arc<dyn BindPlugin>>, pod: Arc<PodInfo>, node: String) -> Status {
        for b in binders {
            let s = b.bind(pod.clone(), node.clone()).await;
            if s.code != Code::Skip {
                return s.with_plugin(b.name());
            }
        }
        Status::error("no bind plugin bound the pod")
    }

    /// The Bind plugins (cloned out so a binding task can own them).
    pub fn binders(&self) -> Vec<Arc<dyn BindPlugin>> {
        self.bind.clone()
    }
}

#[cfg(test)]
mod tests;
