//! The scheduling loop: merges the pod, node and PriorityClass watch streams
//! into the [`Scheduler`], pops pods off the queue and schedules them one at
//! a time, and collects finished bindings. Binding tasks and the side-effect
//! worker live in `JoinSet`s owned by the loop's future, so dropping the
//! future stops everything.

use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt, stream::BoxStream};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::SchedulerConfig;
use crate::effects;
use crate::error::Error;
use crate::framework::Framework;
use crate::plugins::default_binder::DefaultBinder;
use crate::plugins::default_framework;
use crate::scheduler::{BindOutcome, Scheduler};

enum Ev {
    Pod(Box<watcher::Event<Pod>>),
    Node(Box<watcher::Event<Node>>),
    Pc(Box<watcher::Event<PriorityClass>>),
    Ended(&'static str),
}

fn watch<K>(api: Api<K>, wrap: fn(Box<watcher::Event<K>>) -> Ev, name: &'static str) -> BoxStream<'static, Ev>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        // Like upstream's informers, the scheduler never reads managedFields;
        // dropping them keeps its copy of every pod a good deal smaller.
        .modify(|obj: &mut K| obj.meta_mut().managed_fields = None)
        .filter_map(move |r| async move {
            match r {
                Ok(e) => Some(wrap(Box::new(e))),
                Err(e) => {
                    tracing::warn!(resource = name, error = %e, "scheduler watch error");
                    None
                }
            }
        })
        .chain(futures::stream::once(async move { Ev::Ended(name) }))
        .boxed()
}

fn handle(s: &mut Scheduler, ev: Ev) -> Result<(), Error> {
    let now = Instant::now();
    match ev {
        Ev::Pod(e) => match *e {
            watcher::Event::Init => s.pods_relist_started(),
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => s.pod_applied(p, now),
            watcher::Event::Delete(p) => s.pod_deleted(&p),
            watcher::Event::InitDone => s.pods_relist_done(),
        },
        Ev::Node(e) => match *e {
            watcher::Event::Init => s.nodes_relist_started(),
            watcher::Event::InitApply(n) | watcher::Event::Apply(n) => s.node_applied(n, now),
            watcher::Event::Delete(n) => s.node_deleted(n.metadata.name.as_deref().unwrap_or("")),
            watcher::Event::InitDone => s.nodes_relist_done(),
        },
        Ev::Pc(e) => match *e {
            watcher::Event::InitApply(pc) | watcher::Event::Apply(pc) => s.priority_class_applied(&pc),
            watcher::Event::Delete(pc) => s.priority_class_deleted(&pc),
            watcher::Event::Init | watcher::Event::InitDone => {}
        },
        Ev::Ended(name) => return Err(Error::StreamEnded(name)),
    }
    Ok(())
}

/// Runs the scheduler with the default plugins until an error; stops
/// cleanly (in-flight bindings and writes aborted) when the future is dropped.
pub async fn run(client: kube::Client, config: SchedulerConfig) -> Result<(), Error> {
    let fw = default_framework(&config.weights).bind(std::sync::Arc::new(DefaultBinder::new(client.clone())));
    run_with(client, config, fw).await
}

/// Runs the scheduler with a custom framework (which must include a binder).
pub async fn run_with(client: kube::Client, config: SchedulerConfig, fw: Framework) -> Result<(), Error> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut background = JoinSet::new();
    background.spawn(effects::run_worker(
        client.clone(),
        rx,
        config.max_side_effects_in_flight,
        config.scheduler_name.clone(),
    ));
    let max_binds = config.max_binds_in_flight.max(1);
    let mut sched = Scheduler::new(config, fw, tx);
    let mut events = futures::stream::select_all([
        watch(Api::<Pod>::all(client.clone()), Ev::Pod, "pods"),
        watch(Api::<Node>::all(client.clone()), Ev::Node, "nodes"),
        watch(Api::<PriorityClass>::all(client), Ev::Pc, "priorityclasses"),
    ]);
    let mut binds: JoinSet<BindOutcome> = JoinSet::new();
    let mut since_yield = 0u32;
    loop {
        while let Some(ev) = events.next().now_or_never() {
            handle(&mut sched, ev.ok_or(Error::StreamEnded("scheduler"))?)?;
        }
        while let Some(done) = binds.try_join_next() {
            if let Ok(out) = done {
                sched.bind_done(out, Instant::now());
            }
        }
        let now = Instant::now();
        let next_due = sched.queue.tick(now);
        if sched.synced()
            && binds.len() < max_binds
            && let Some(qp) = sched.queue.pop()
        {
            sched.schedule_one(qp, &mut binds, now);
            since_yield += 1;
            if since_yield >= 16 {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
            continue;
        }
        let wake = next_due
            .unwrap_or(now + Duration::from_secs(1))
            .min(now + Duration::from_secs(1));
        tokio::select! {
            ev = events.next() => handle(&mut sched, ev.ok_or(Error::StreamEnded("scheduler"))?)?,
            Some(done) = binds.join_next(), if !binds.is_empty() => {
                if let Ok(out) = done {
                    sched.bind_done(out, Instant::now());
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}
