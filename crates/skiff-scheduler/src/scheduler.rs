//! [`Scheduler`]: the state the scheduling loop owns (cache, queue,
//! framework, known pods and priority classes) and what it does with each
//! informer event, each scheduling attempt and each finished binding.
//!
//! Synchronous: the async loop in [`crate::run`] feeds it; API writes leave
//! through the [`Effect`] channel and the binding tasks it spawns.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::algorithm::{Algorithm, ScheduleError};
use crate::cache::{Cache, NodeChange};
use crate::config::SchedulerConfig;
use crate::effects::{Effect, has_condition};
use crate::framework::{CycleState, Framework, PostFilterInput, Status};
use crate::pod_info::PodInfo;
use crate::queue::{QueuedPod, SchedulingQueue};

/// A finished binding task.
pub struct BindOutcome {
    qp: QueuedPod,
    node: String,
    state: CycleState,
    status: Status,
}

/// Everything the scheduling loop owns.
pub struct Scheduler {
    cfg: SchedulerConfig,
    fw: Framework,
    algo: Algorithm,
    pub(crate) cache: Cache,
    pub(crate) queue: SchedulingQueue,
    known: HashMap<String, Arc<PodInfo>>,
    priority_classes: HashMap<String, i32>,
    global_default: Option<(String, i32)>,
    effects: mpsc::UnboundedSender<Effect>,
    pods_synced: bool,
    nodes_synced: bool,
    relist: Option<HashSet<String>>,
    node_relist: Option<HashSet<String>>,
    /// Pods bound so far (for logs and benchmarks).
    pub bound: u64,
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

impl Scheduler {
    /// A scheduler running `fw`, sending API writes to `effects`.
    pub fn new(cfg: SchedulerConfig, fw: Framework, effects: mpsc::UnboundedSender<Effect>) -> Self {
        Scheduler {
            algo: Algorithm::new(cfg.percentage_of_nodes_to_score, cfg.parallelism),
            queue: SchedulingQueue::new(cfg.queue.clone()),
            cfg,
            fw,
            cache: Cache::new(),
            known: HashMap::new(),
            priority_classes: HashMap::new(),
            global_default: None,
            effects,
            pods_synced: false,
            nodes_synced: false,
            relist: None,
            node_relist: None,
            bound: 0,
        }
    }

    /// Whether both informers have listed once (scheduling before that would
    /// see an empty cluster).
    pub fn synced(&self) -> bool {
        self.pods_synced && self.nodes_synced
    }

    fn priority_of(&self, pod: &Pod) -> i32 {
        let spec = pod.spec.as_ref();
        if let Some(p) = spec.and_then(|s| s.priority) {
            return p;
        }
        match spec
            .and_then(|s| s.priority_class_name.as_deref())
            .filter(|s| !s.is_empty())
        {
            Some(name) => self.priority_classes.get(name).copied().unwrap_or(0),
            None => self.global_default.as_ref().map_or(0, |(_, v)| *v),
        }
    }

    fn effect(&self, e: Effect) {
        let _ = self.effects.send(e);
    }

    // ---- informer events ----

    /// A watch relist started: remember what is seen until it is done.
    pub fn pods_relist_started(&mut self) {
        self.relist = Some(HashSet::new());
    }

    /// A relist finished: pods not seen in it were deleted meanwhile.
    pub fn pods_relist_done(&mut self) {
        if let Some(seen) = self.relist.take() {
            let gone: Vec<Arc<PodInfo>> = self
                .known
                .iter()
                .filter(|(k, _)| !seen.contains(*k))
                .map(|(_, p)| p.clone())
                .collect();
            for p in gone {
                self.pod_deleted(&p.pod.clone());
            }
        }
        self.pods_synced = true;
    }

    /// A pod was added or changed.
    pub fn pod_applied(&mut self, pod: Pod, now: Instant) {
        let key = pod_key(&pod);
        if let Some(seen) = self.relist.as_mut() {
            seen.insert(key.clone());
        }
        let priority = self.priority_of(&pod);
        let info = Arc::new(PodInfo::new(Arc::new(pod), priority));
        let old = self.known.insert(key.clone(), info.clone());
        let pod = &info.pod;
        if let Some(node) = info.node_name().map(str::to_string) {
            self.queue.delete(&key);
            if is_terminal(pod) {
                if self.cache.remove_pod(&info.uid) {
                    self.queue.move_all_to_active_or_backoff(now);
                }
                return;
            }
            let new_here = !self.cache.contains_pod(&info.uid);
            self.cache.apply_bound_pod(info.clone(), &node);
            if new_here && !info.labels.is_empty() {
                self.queue.move_all_to_active_or_backoff(now);
            }
            return;
        }
        let ours = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler")
            == self.cfg.scheduler_name;
        if !ours || is_terminal(pod) || pod.metadata.deletion_timestamp.is_some() {
            self.queue.delete(&key);
            return;
        }
        if self.cache.is_assumed(&info.uid) {
            return;
        }
        let spec_changed = old.is_none_or(|o| o.pod.spec != pod.spec || o.labels != info.labels);
        self.queue.add_or_update(info, spec_changed, now);
    }

    /// A pod was deleted.
    pub fn pod_deleted(&mut self, pod: &Pod) {
        let key = pod_key(pod);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.known.remove(&key);
        self.queue.delete(&key);
        if self.cache.remove_pod(&uid) {
            self.queue.move_all_to_active_or_backoff(Instant::now());
        }
    }

    /// A node was added or changed.
    pub fn node_applied(&mut self, node: Node, now: Instant) {
        if let Some(seen) = self.node_relist.as_mut() {
            seen.insert(node.metadata.name.clone().unwrap_or_default());
        }
        if self.cache.apply_node(Arc::new(node)) != NodeChange::Irrelevant {
            self.queue.move_all_to_active_or_backoff(now);
        }
    }

    /// A node was deleted.
    pub fn node_deleted(&mut self, name: &str) {
        self.cache.remove_node(name);
    }

    /// A node relist started.
    pub fn nodes_relist_started(&mut self) {
        self.node_relist = Some(HashSet::new());
    }

    /// A node relist finished.
    pub fn nodes_relist_done(&mut self) {
        if let Some(seen) = self.node_relist.take() {
            let gone: Vec<String> = self
                .cache
                .nodes()
                .iter()
                .filter(|n| !seen.contains(&n.name))
                .map(|n| n.name.clone())
                .collect();
            for n in gone {
                self.cache.remove_node(&n);
            }
        }
        self.nodes_synced = true;
    }

    /// A PriorityClass was added or changed.
    pub fn priority_class_applied(&mut self, pc: &PriorityClass) {
        let name = pc.metadata.name.clone().unwrap_or_default();
        self.priority_classes.insert(name.clone(), pc.value);
        if pc.global_default == Some(true) {
            self.global_default = Some((name, pc.value));
        } else if self.global_default.as_ref().is_some_and(|(n, _)| *n == name) {
            self.global_default = None;
        }
    }

    /// A PriorityClass was deleted.
    pub fn priority_class_deleted(&mut self, pc: &PriorityClass) {
        let name = pc.metadata.name.clone().unwrap_or_default();
        self.priority_classes.remove(&name);
        if self.global_default.as_ref().is_some_and(|(n, _)| *n == name) {
            self.global_default = None;
        }
    }

    // ---- scheduling ----

    /// Schedules one popped pod; a binding task goes into `binds`.
    pub fn schedule_one(&mut self, qp: QueuedPod, binds: &mut JoinSet<BindOutcome>, now: Instant) {
        let pod = match self.known.get(&qp.info.key) {
            Some(p) if p.uid == qp.info.uid && p.node_name().is_none() => p.clone(),
            _ => {
                self.queue.done(&qp.info.key);
                return;
            }
        };
        let mut state = CycleState::new();
        match self.algo.schedule(&self.fw, &mut state, &pod, &self.cache) {
            Ok(node) => {
                self.cache.assume(pod.clone(), &node);
                let s = self.fw.run_reserve(&mut state, &pod, &node);
                if !s.is_success() {
                    self.cache.forget(&pod.uid);
                    self.fail(qp, &pod, s.message(), true, now);
                    return;
                }
                let binders = self.fw.binders();
                binds.spawn(async move {
                    let status = Framework::run_bind(binders, pod, node.clone()).await;
                    BindOutcome {
                        qp,
                        node,
                        state,
                        status,
                    }
                });
            }
            Err(ScheduleError::Internal(msg)) => self.fail(qp, &pod, msg, true, now),
            Err(ScheduleError::Fit(mut fit)) => {
                let input = PostFilterInput {
                    state: &state,
                    pod: &pod,
                    cache: &self.cache,
                    statuses: &fit.statuses,
                    framework: &self.fw,
                };
                let (result, s) = self.fw.run_post_filter(&input);
                match result.filter(|_| s.is_success()) {
                    Some(r) => {
                        for victim in r.victims {
                            self.effect(Effect::Event {
                                pod: victim.clone(),
                                kind: "Normal",
                                reason: "Preempted",
                                message: format!(
                                    "Preempted by pod {} on node {}",
                                    pod.uid,
                                    r.nominated_node.as_deref().unwrap_or("")
                                ),
                            });
                            self.effect(Effect::Evict { victim });
                        }
                        if let Some(node) = r.nominated_node {
                            self.effect(Effect::Nominate {
                                pod: pod.clone(),
                                node,
                            });
                        }
                    }
                    None => fit.post_filter_msg = Some(s.message()),
                }
                self.fail(qp, &pod, fit.message(), false, now);
            }
        }
    }

    fn fail(&mut self, qp: QueuedPod, pod: &Arc<PodInfo>, message: String, to_backoff: bool, now: Instant) {
        tracing::debug!(pod = %pod.key, %message, "unschedulable");
        self.effect(Effect::Event {
            pod: pod.clone(),
            kind: "Warning",
            reason: "FailedScheduling",
            message: message.clone(),
        });
        if !has_condition(&pod.pod, &message) {
            self.effect(Effect::Unschedulable {
                pod: pod.clone(),
                message,
            });
        }
        self.queue.requeue_failed(qp, to_backoff, now);
    }

    /// A binding finished.
    pub fn bind_done(&mut self, mut out: BindOutcome, now: Instant) {
        let pod = out.qp.info.clone();
        if out.status.is_success() {
            self.bound += 1;
            self.queue.done(&pod.key);
            if self.cfg.record_scheduled_events {
                self.effect(Effect::Event {
                    pod: pod.clone(),
                    kind: "Normal",
                    reason: "Scheduled",
                    message: format!("Successfully assigned {} to {}", pod.key, out.node),
                });
            }
            return;
        }
        self.cache.forget(&pod.uid);
        self.fw.run_unreserve(&mut out.state, &pod, &out.node);
        let msg = format!("Binding rejected: {}", out.status.message());
        self.queue.move_all_to_active_or_backoff(now);
        if self
            .known
            .get(&pod.key)
            .is_some_and(|p| p.uid == pod.uid && p.node_name().is_none())
        {
            self.fail(out.qp, &pod, msg, true, now);
        } else {
            self.queue.done(&pod.key);
        }
    }
}
