//! Service accounts controller: every namespace that is not terminating has
//! a `default` ServiceAccount; it is created when the namespace appears and
//! again whenever someone deletes it.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{self, Event};

use crate::manager::{ControllerConfig, Error};

/// Name of the service account every namespace gets.
pub const DEFAULT_SA: &str = "default";

/// Watches namespaces and `default` service accounts until a watch fails.
pub async fn run(client: kube::Client, _cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::all(client.clone());
    let ns_names = watcher::watcher(namespaces.clone(), watcher::Config::default())
        .map_ok(|ev| match ev {
            Event::Apply(ns) | Event::InitApply(ns) if !terminating(&ns) => ns.metadata.name,
            _ => None,
        })
        .boxed();
    let sa_config = watcher::Config::default().fields(&format!("metadata.name={DEFAULT_SA}"));
    let deleted = watcher::watcher(accounts, sa_config)
        .map_ok(|ev| match ev {
            Event::Delete(sa) => sa.metadata.namespace,
            _ => None,
        })
        .boxed();
    let mut merged = stream::select(ns_names, deleted);
    while let Some(ns) = merged.try_next().await? {
        let Some(ns) = ns else { continue };
        if let Err(e) = ensure(&client, &namespaces, &ns).await {
            tracing::warn!(namespace = %ns, error = %e, "serviceaccount: could not ensure default");
        }
    }
    Ok(())
}

fn terminating(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
}

/// Creates `ns/default` unless it exists or the namespace is going away.
pub async fn ensure(client: &kube::Client, namespaces: &Api<Namespace>, ns: &str) -> Result<(), Error> {
    match namespaces.get_opt(ns).await? {
        Some(n) if !terminating(&n) => {}
        _ => return Ok(()),
    }
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT_SA.into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => Ok(()),
        // Exists already, or the namespace began terminating meanwhile.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 403 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
