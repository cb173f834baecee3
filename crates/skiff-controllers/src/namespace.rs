//! Namespace lifecycle: a namespace being deleted (Terminating) is emptied —
//! every namespaced object of every discovered resource is deleted — its
//! status conditions say how far that got, as upstream's, and once nothing is
//! left the `kubernetes` finalizer is removed through
//! `namespaces/{name}/finalize`, which lets the API server remove it.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};

use crate::gc::{Resource, discover};
use crate::manager::{ControllerConfig, Error};

/// The finalizer the namespace controller owns.
pub const KUBERNETES_FINALIZER: &str = "kubernetes";

/// Polls for terminating namespaces and empties them, until an error.
pub async fn run(client: kube::Client, _cfg: Arc<ControllerConfig>) -> Result<(), Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    loop {
        let list = api.list(&ListParams::default()).await?;
        let terminating: Vec<Namespace> = list
            .items
            .into_iter()
            .filter(|n| n.metadata.deletion_timestamp.is_some())
            .collect();
        if !terminating.is_empty() {
            let resources = discover(&client).await;
            for ns in terminating {
                if let Err(e) = reconcile(&client, &api, ns, resources.as_deref().ok()).await {
                    tracing::warn!(error = %e, "namespace: reconcile failed");
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What emptying found: counts of remaining objects per resource, failures.
#[derive(Debug, Default)]
pub struct Progress {
    /// `(plural.group, count)` of objects still present.
    pub remaining: Vec<(String, usize)>,
    /// Delete calls that failed, as messages.
    pub failures: Vec<String>,
    /// Discovery failed.
    pub discovery_failed: bool,
}

async fn reconcile(
    client: &kube::Client,
    api: &Api<Namespace>,
    mut ns: Namespace,
    resources: Option<&[Resource]>,
) -> Result<(), Error> {
    let Some(name) = ns.metadata.name.clone() else {
        return Ok(());
    };
    let mut progress = Progress {
        discovery_failed: resources.is_none(),
        ..Progress::default()
    };
    for r in resources.unwrap_or(&[]).iter().filter(|r| r.namespaced) {
        let dyn_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &name, &r.ar);
        let Ok(list) = dyn_api.list(&ListParams::default()).await else {
            continue;
        };
        let label = if r.ar.group.is_empty() {
            r.ar.plural.clone()
        } else {
            format!("{}.{}", r.ar.plural, r.ar.group)
        };
        if list.items.is_empty() {
            continue;
        }
        progress.remaining.push((label.clone(), list.items.len()));
        for obj in list
            .items
            .iter()
            .filter(|o| o.metadata.deletion_timestamp.is_none())
        {
            let Some(n) = obj.metadata.name.as_deref() else {
                continue;
            };
            match dyn_api.delete(n, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => progress.failures.push(format!("{label} \"{n}\": {e}")),
            }
        }
    }
    let conditions = conditions(&progress);
    let status = ns.status.get_or_insert_with(Default::default);
    status.phase = Some("Terminating".into());
    status.conditions = Some(conditions);
    if progress.remaining.is_empty() && !progress.discovery_failed {
        let spec = ns.spec.get_or_insert_with(Default::default);
        let had = spec
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x == KUBERNETES_FINALIZER));
        if had {
            spec.finalizers = Some(
                spec.finalizers
                    .iter()
                    .flatten()
                    .filter(|f| *f != KUBERNETES_FINALIZER)
                    .cloned()
                    .collect(),
            );
            api.replace_subresource("finalize", &name, &PostParams::default(), &ns)
                .await?;
            return Ok(());
        }
    }
    match api.replace_status(&name, &PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The status conditions upstream's namespace controller writes.
pub fn conditions(p: &Progress) -> Vec<NamespaceCondition> {
    let now = Some(Time(jiff::Timestamp::now()));
    let cond = |type_: &str, on: bool, reason: &str, message: String| NamespaceCondition {
        type_: type_.into(),
        status: if on { "True".into() } else { "False".into() },
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: now.clone(),
    };
    let remaining: Vec<String> = p
        .remaining
        .iter()
        .map(|(r, n)| format!("{r} has {n} resource instances"))
        .collect();
    vec![
        if p.discovery_failed {
            cond(
                "NamespaceDeletionDiscoveryFailure",
                true,
                "DiscoveryFailed",
                "Discovery failed".into(),
            )
        } else {
            cond(
                "NamespaceDeletionDiscoveryFailure",
                false,
                "ResourcesDiscovered",
                "All resources successfully discovered".into(),
            )
        },
        cond(
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
        ),
        if p.failures.is_empty() {
            cond(
                "NamespaceDeletionContentFailure",
                false,
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization".into(),
            )
        } else {
            cond(
                "NamespaceDeletionContentFailure",
                true,
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    p.failures.len(),
                    p.failures.join(", ")
                ),
            )
        },
        if remaining.is_empty() {
            cond(
                "NamespaceContentRemaining",
                false,
                "ContentRemoved",
                "All content successfully removed".into(),
            )
        } else {
            cond(
                "NamespaceContentRemaining",
                true,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", remaining.join(", ")),
            )
        },
        cond(
            "NamespaceFinalizersRemaining",
            false,
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".into(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_content_is_reported_like_upstream() {
        let p = Progress {
            remaining: vec![("pods".into(), 2)],
            ..Progress::default()
        };
        let c = conditions(&p);
        let rem = c.iter().find(|c| c.type_ == "NamespaceContentRemaining").unwrap();
        assert_eq!(rem.status, "True");
        assert_eq!(
            rem.message.as_deref(),
            Some("Some resources are remaining: pods has 2 resource instances")
        );
    }

    #[test]
    fn an_empty_namespace_reports_content_removed() {
        let c = conditions(&Progress::default());
        let rem = c.iter().find(|c| c.type_ == "NamespaceContentRemaining").unwrap();
        assert_eq!(
            (rem.status.as_str(), rem.reason.as_deref()),
            ("False", Some("ContentRemoved"))
        );
    }
}
