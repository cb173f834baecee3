//! The probe loop of one container: one task runs its startup, liveness and
//! readiness probes, each on its own period, with kubelet's rules. The
//! startup probe gates the other two; a probe's first run waits
//! `initialDelaySeconds` after the container started; a result only changes
//! after `successThreshold` passes or `failureThreshold` failures in a row;
//! a startup or liveness failure puts the container on hold (the agent core
//! restarts it and adds the new container again). Each failed run records
//! a Warning event `Unhealthy` ("Readiness probe failed: ...").

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_cri::v1::ContainerStatusRequest;
use k8s_openapi::api::core::v1::{ContainerPort, ObjectReference, Probe};
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::action::{self, Outcome, Target};
use super::events::EventSink;
use super::grpc;
use crate::CriClient;

/// The three probe kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `startupProbe`.
    Startup,
    /// `livenessProbe`.
    Liveness,
    /// `readinessProbe`.
    Readiness,
}

impl Kind {
    /// The word events start with ("Liveness probe failed: ...").
    pub fn title(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }
}

/// Probe results of one container as the worker keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Results {
    /// The startup probe passed (or there is none).
    pub started: bool,
    /// The readiness probe's result (true when there is none).
    pub ready: bool,
    /// A startup or liveness probe failed `failureThreshold` times.
    pub liveness_failed: bool,
    /// Why the container must restart, in kubelet's words.
    pub restart_message: Option<String>,
}

/// What the manager and the worker share about one container.
#[derive(Debug)]
pub struct Shared {
    /// The results.
    pub results: Mutex<Results>,
    started: watch::Sender<bool>,
}

impl Shared {
    /// Results before any probe ran.
    pub fn new(results: Results) -> Shared {
        let (started, _) = watch::channel(results.started);
        Shared {
            results: Mutex::new(results),
            started,
        }
    }

    /// Changes the results with `f`; true when they changed.
    fn update(&self, f: impl FnOnce(&mut Results)) -> bool {
        let Ok(mut results) = self.results.lock() else {
            return false;
        };
        let before = results.clone();
        f(&mut results);
        self.started.send_replace(results.started);
        *results != before
    }
}

/// Everything the worker needs about its container.
pub struct Worker {
    /// The CRI connection.
    pub cri: CriClient,
    /// The pod's uid, sent on `notify` when a result changes.
    pub pod_uid: String,
    /// The container's name.
    pub container_name: String,
    /// The CRI container id.
    pub container_id: String,
    /// The pod IP.
    pub pod_ip: Option<String>,
    /// The container's ports, for named ports.
    pub ports: Vec<ContainerPort>,
    /// The probes (None: not configured).
    pub startup: Option<Probe>,
    /// See `startup`.
    pub liveness: Option<Probe>,
    /// See `startup`.
    pub readiness: Option<Probe>,
    /// The results, shared with the manager.
    pub shared: Arc<Shared>,
    /// Where result changes are announced.
    pub notify: broadcast::Sender<String>,
    /// Where events go, with the object they are about.
    pub events: Option<(EventSink, ObjectReference)>,
}

/// A probe's timing with kubelet's defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `initialDelaySeconds` (0).
    pub initial_delay: Duration,
    /// `periodSeconds` (10).
    pub period: Duration,
    /// `timeoutSeconds` (1).
    pub timeout: Duration,
    /// `successThreshold` (1).
    pub success_threshold: u32,
    /// `failureThreshold` (3).
    pub failure_threshold: u32,
}

impl Timing {
    /// The probe's settings; missing or non-positive values take the defaults.
    pub fn of(probe: &Probe) -> Timing {
        let secs = |v: Option<i32>, default: u64, min: u64| {
            Duration::from_secs(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(default).max(min))
        };
        let count =
            |v: Option<i32>, default: u32| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(default).max(1);
        Timing {
            initial_delay: secs(probe.initial_delay_seconds, 0, 0),
            period: secs(probe.period_seconds, 10, 1),
            timeout: secs(probe.timeout_seconds, 1, 1),
            success_threshold: count(probe.success_threshold, 1),
            failure_threshold: count(probe.failure_threshold, 3),
        }
    }
}

/// kubelet's result counting: a new result counts only after a run of it
/// as long as its threshold.
#[derive(Debug, Default)]
pub struct Counter {
    last: Option<bool>,
    run: u32,
}

impl Counter {
    /// Counts one run; returns the result to apply once the run is long enough.
    pub fn observe(&mut self, passed: bool, timing: &Timing) -> Option<bool> {
        if self.last == Some(passed) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(passed);
            self.run = 1;
        }
        let needed = if passed {
            timing.success_threshold
        } else {
            timing.failure_threshold
        };
        (self.run >= needed).then_some(passed)
    }
}

impl Worker {
    /// Runs all of the container's probes until each is done or the task is aborted.
    pub async fn run(self) {
        let this = Arc::new(self);
        let started_at = this.started_at().await;
        let loops = [
            (Kind::Startup, this.startup.clone()),
            (Kind::Liveness, this.liveness.clone()),
            (Kind::Readiness, this.readiness.clone()),
        ]
        .into_iter()
        .filter_map(|(kind, probe)| probe.map(|p| this.clone().probe_loop(kind, p, started_at)));
        futures::future::join_all(loops).await;
    }

    /// When the container started, from the runtime (an adopted container
    /// may have started long ago); now if the runtime does not say.
    async fn started_at(&self) -> Instant {
        let request = ContainerStatusRequest {
            container_id: self.container_id.clone(),
            verbose: false,
        };
        let Ok(reply) = self.cri.runtime.clone().container_status(request).await else {
            return Instant::now();
        };
        let nanos = reply
            .into_inner()
            .status
            .map(|s| s.started_at)
            .unwrap_or_default();
        let started = UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap_or_default());
        match SystemTime::now().duration_since(started) {
            Ok(ago) if nanos > 0 => Instant::now().checked_sub(ago).unwrap_or_else(Instant::now),
            _ => Instant::now(),
        }
    }

    async fn probe_loop(self: Arc<Self>, kind: Kind, probe: Probe, started_at: Instant) {
        let timing = Timing::of(&probe);
        if kind != Kind::Startup {
            let mut started = self.shared.started.subscribe();
            if started.wait_for(|s| *s).await.is_err() {
                return;
            }
        }
        tokio::time::sleep_until(started_at + timing.initial_delay).await;
        let mut ticker = tokio::time::interval(timing.period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut counter = Counter::default();
        loop {
            ticker.tick().await;
            let outcome = self.run_once(&probe, timing.timeout).await;
            self.report(kind, &outcome).await;
            if matches!(outcome, Outcome::Error(_)) {
                continue;
            }
            let Some(passed) = counter.observe(outcome.passed(), &timing) else {
                continue;
            };
            if !self.apply(kind, passed) {
                return;
            }
        }
    }

    async fn run_once(&self, probe: &Probe, timeout: Duration) -> Outcome {
        let target = Target {
            cri: &self.cri,
            container_id: &self.container_id,
            pod_ip: self.pod_ip.as_deref(),
            ports: &self.ports,
        };
        if let Some(exec) = &probe.exec {
            action::exec(target, exec, timeout).await
        } else if let Some(get) = &probe.http_get {
            action::http_get(target, get, timeout).await
        } else if let Some(tcp) = &probe.tcp_socket {
            action::tcp(target, tcp, timeout).await
        } else if let Some(grpc) = &probe.grpc {
            match (self.pod_ip.as_deref(), u16::try_from(grpc.port)) {
                (Some(ip), Ok(port)) => {
                    grpc::probe(ip, port, grpc.service.as_deref().unwrap_or_default(), timeout).await
                }
                (None, _) => Outcome::Error("grpc probe: the pod has no IP yet".to_string()),
                (_, Err(_)) => Outcome::Error(format!("invalid port number: {}", grpc.port)),
            }
        } else {
            Outcome::Error("probe has no handler".to_string())
        }
    }

    /// Records the run's event, as kubelet does for every run that did not pass cleanly.
    async fn report(&self, kind: Kind, outcome: &Outcome) {
        let (reason, message) = match outcome {
            Outcome::Success(_) => return,
            Outcome::Failure(out) => ("Unhealthy", format!("{} probe failed: {out}", kind.title())),
            Outcome::Warning(out) => ("ProbeWarning", format!("{} probe warning: {out}", kind.title())),
            Outcome::Error(err) => ("Unhealthy", format!("{} probe errored: {err}", kind.title())),
        };
        tracing::debug!(pod = %self.pod_uid, container = %self.container_name, "{message}");
        if let Some((sink, about)) = &self.events {
            let (sink, about) = (sink.clone(), about.clone());
            tokio::spawn(async move { sink.warning(&about, reason, &message).await });
        }
    }

    /// Applies a counted result; false when this probe is done.
    fn apply(&self, kind: Kind, passed: bool) -> bool {
        let name = &self.container_name;
        let (changed, keep_going) = match (kind, passed) {
            (Kind::Startup, true) => (self.shared.update(|r| r.started = true), false),
            (Kind::Readiness, ready) => (self.shared.update(|r| r.ready = ready), true),
            (Kind::Liveness, true) => (false, true),
            (Kind::Startup | Kind::Liveness, false) => {
                let which = if kind == Kind::Startup {
                    "startup"
                } else {
                    "liveness"
                };
                let message = format!("Container {name} failed {which} probe, will be restarted");
                let changed = self.shared.update(|r| {
                    r.liveness_failed = true;
                    r.restart_message = Some(message);
                });
                (changed, false)
            }
        };
        if changed {
            let _ = self.notify.send(self.pod_uid.clone());
        }
        keep_going
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(success: u32, failure: u32) -> Timing {
        Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn a_result_counts_only_after_its_threshold_in_a_row() {
        let t = timing(2, 3);
        let mut c = Counter::default();
        assert_eq!(c.observe(false, &t), None);
        assert_eq!(c.observe(false, &t), None);
        assert_eq!(c.observe(true, &t), None, "a pass resets the failure run");
        assert_eq!(c.observe(false, &t), None);
        assert_eq!(c.observe(false, &t), None);
        assert_eq!(c.observe(false, &t), Some(false));
        assert_eq!(c.observe(false, &t), Some(false));
        assert_eq!(c.observe(true, &t), None);
        assert_eq!(c.observe(true, &t), Some(true));
    }

    #[test]
    fn probe_timing_defaults_are_kubelets() {
        let t = Timing::of(&Probe::default());
        assert_eq!(
            t,
            Timing {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3,
            }
        );
        let t = Timing::of(&Probe {
            initial_delay_seconds: Some(5),
            period_seconds: Some(0),
            timeout_seconds: Some(3),
            failure_threshold: Some(1),
            ..Probe::default()
        });
        assert_eq!(t.initial_delay, Duration::from_secs(5));
        assert_eq!(t.period, Duration::from_secs(1));
        assert_eq!(t.timeout, Duration::from_secs(3));
        assert_eq!(t.failure_threshold, 1);
    }
}
