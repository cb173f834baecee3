//! The services and pods the endpoints and endpointslice controllers read
//! (the manager's shared informers), and the loop that runs a pass over the
//! services of the namespaces that changed: a pod change in a namespace
//! without services costs nothing but a set insert.
//!
//! Must not: write to the API server (the passes do).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::runtime::reflector::Store;

use super::{PortGroup, apiserver_groups, resolve};
use crate::informer::{Informers, namespace_of};
use crate::manager::{ControllerConfig, Error};

/// How often changes are gathered into one pass.
const PERIOD: Duration = Duration::from_millis(100);
/// Every this many periods (~10 s) a pass covers every service, which also
/// repairs objects edited by others.
const FULL_EVERY: u32 = 100;

/// What changed since the last pass.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    /// Everything (first pass, full resync).
    pub all: bool,
    /// Namespaces with a changed service or pod.
    pub namespaces: HashSet<String>,
}

/// Services and pods kept in memory (shared informers).
pub(crate) struct Cache {
    pub services: Store<Service>,
    pub pods: Store<Pod>,
}

impl Cache {
    /// Every service in `scope` with its resolved groups (including
    /// `default/kubernetes`). Pods are only looked at in namespaces that
    /// have a service in scope.
    pub fn desired(&self, cfg: &ControllerConfig, scope: &Dirty) -> Vec<(Arc<Service>, Vec<PortGroup>)> {
        let in_scope = |ns: &str| scope.all || scope.namespaces.contains(ns);
        let services: Vec<Arc<Service>> = self
            .services
            .state()
            .into_iter()
            .filter(|s| in_scope(s.metadata.namespace.as_deref().unwrap_or_default()))
            .collect();
        if services.is_empty() {
            return Vec::new();
        }
        let wanted: HashSet<&str> = services
            .iter()
            .map(|s| s.metadata.namespace.as_deref().unwrap_or_default())
            .collect();
        let mut pods: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for p in self.pods.state() {
            let ns = p.metadata.namespace.as_deref().unwrap_or_default();
            if wanted.contains(ns) {
                pods.entry(ns.to_string()).or_default().push(p);
            }
        }
        let none = Vec::new();
        let mut out = Vec::new();
        for svc in services {
            let ns = svc.metadata.namespace.clone().unwrap_or_default();
            let is_apiserver = ns == "default" && svc.metadata.name.as_deref() == Some("kubernetes");
            let groups = match (&cfg.apiserver_endpoint, is_apiserver) {
                (Some((ip, port)), true) => Some(apiserver_groups(ip, i32::from(*port))),
                _ => resolve(&svc, pods.get(&ns).unwrap_or(&none)),
            };
            if let Some(g) = groups {
                out.push((svc, g));
            }
        }
        out
    }
}

/// Runs `pass` over the namespaces whose services or pods changed (at most
/// every 100 ms; every service every ~10 s).
pub(crate) async fn drive<F, Fut>(informers: &Informers, mut pass: F) -> Result<(), Error>
where
    F: FnMut(&Cache, &Dirty) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let services = informers.all::<Service>();
    let pods = informers.all::<Pod>();
    let dirty = Arc::new(Mutex::new(Dirty {
        all: true,
        ..Dirty::default()
    }));
    let mark = dirty.clone();
    let changes = futures::stream::select(
        services.subscribe().map(|c| namespace_of(&c)),
        pods.subscribe().map(|c| namespace_of(&c)),
    )
    .for_each(move |ns| {
        mark.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .namespaces
            .insert(ns);
        std::future::ready(())
    });
    let cache = Cache {
        services: services.store(),
        pods: pods.store(),
    };
    let work = async {
        services.ready().await;
        pods.ready().await;
        let mut ticks = 0u32;
        loop {
            ticks = ticks.wrapping_add(1);
            let mut scope = std::mem::take(&mut *dirty.lock().unwrap_or_else(PoisonError::into_inner));
            scope.all |= ticks.is_multiple_of(FULL_EVERY);
            if scope.all || !scope.namespaces.is_empty() {
                pass(&cache, &scope).await;
            }
            tokio::time::sleep(PERIOD).await;
        }
    };
    tokio::select! {
        () = changes => Ok(()),
        () = work => Ok(()),
    }
}
