//! Root CA publisher (upstream's root-ca-cert-publisher): every namespace
//! that is not terminating has a `kube-root-ca.crt` ConfigMap whose `ca.crt`
//! is the cluster CA, so pods can trust the API server; it is created when
//! the namespace appears and restored when deleted or changed.
//!
//! Does nothing when [`ControllerConfig::root_ca_pem`] is `None`.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{self, Event};

use crate::manager::{ControllerConfig, Error};

/// Name of the ConfigMap in every namespace.
pub const CONFIGMAP: &str = "kube-root-ca.crt";
/// Its key holding the CA certificate (PEM).
pub const KEY: &str = "ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when \
                           using internal endpoints such as the internal service IP or \
                           kubernetes.default.svc. No other usage is guaranteed across distributions \
                           of Kubernetes clusters.";

/// Watches namespaces and `kube-root-ca.crt` ConfigMaps until a watch fails.
pub async fn run(client: kube::Client, cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    let Some(pem) = cfg.root_ca_pem.clone() else {
        std::future::pending::<()>().await;
        return Ok(());
    };
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let maps: Api<ConfigMap> = Api::all(client.clone());
    let ns_names = watcher::watcher(namespaces.clone(), watcher::Config::default())
        .map_ok(|ev| match ev {
            Event::Apply(ns) | Event::InitApply(ns) if ns.metadata.deletion_timestamp.is_none() => {
                ns.metadata.name
            }
            _ => None,
        })
        .boxed();
    let cm_config = watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP}"));
    let changed = watcher::watcher(maps, cm_config)
        .map_ok(|ev| match ev {
            Event::Delete(cm) => cm.metadata.namespace,
            Event::Apply(cm) if !holds(&cm, &pem) => cm.metadata.namespace,
            _ => None,
        })
        .boxed();
    let mut merged = stream::select(ns_names, changed);
    while let Some(ns) = merged.try_next().await? {
        let Some(ns) = ns else { continue };
        if let Err(e) = ensure(&client, &namespaces, &ns, &pem).await {
            tracing::warn!(namespace = %ns, error = %e, "root-ca-publisher: could not publish the CA");
        }
    }
    Ok(())
}

fn holds(cm: &ConfigMap, pem: &str) -> bool {
    cm.data.as_ref().and_then(|d| d.get(KEY)).map(String::as_str) == Some(pem)
}

/// Creates or corrects `ns/kube-root-ca.crt` unless the namespace is going away.
pub async fn ensure(
    client: &kube::Client,
    namespaces: &Api<Namespace>,
    ns: &str,
    pem: &str,
) -> Result<(), Error> {
    match namespaces.get_opt(ns).await? {
        Some(n) if n.metadata.deletion_timestamp.is_none() => {}
        _ => return Ok(()),
    }
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let want = ConfigMap {
        metadata: ObjectMeta {
            name: Some(CONFIGMAP.into()),
            annotations: Some(BTreeMap::from([(
                "kubernetes.io/description".to_string(),
                DESCRIPTION.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(KEY.to_string(), pem.to_string())])),
        ..ConfigMap::default()
    };
    let result = match api.get_opt(CONFIGMAP).await? {
        Some(cm) if holds(&cm, pem) => return Ok(()),
        Some(mut cm) => {
            cm.data = want.data;
            api.replace(CONFIGMAP, &PostParams::default(), &cm).await
        }
        None => api.create(&PostParams::default(), &want).await,
    };
    match result {
        Ok(_) => Ok(()),
        // Raced with another writer, or the namespace began terminating.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 403 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
