//! The objects the API load benchmark writes: its own fresh namespace, the
//! minimal valid pod it creates by the thousand, and the clean-up that removes
//! them again. Only public API calls.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::{Container, Namespace, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use crate::error::BenchError;

/// Label put on every object the benchmark creates.
pub const LABEL: &str = "skiff.dev/bench";

/// A namespace name that is new for this run: `skiff-bench-<base36 millis>`.
pub fn namespace_name() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("skiff-bench-{}", base36(millis))
}

fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([(LABEL.to_string(), "api-load".to_string())])
}

/// A pod with one busybox container and no node: valid, never run.
pub fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".to_string(),
                image: Some("busybox".to_string()),
                command: Some(vec!["sleep".to_string(), "3600".to_string()]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// Creates namespace `name`.
pub async fn create_namespace(client: &Client, name: &str) -> Result<(), BenchError> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .map_err(|e| BenchError::api(format!("creating namespace {name}"), e))?;
    Ok(())
}

/// Deletes every pod in `namespace` (by collection, falling back to one by
/// one), then the namespace itself. Bounded by `limit`.
pub async fn cleanup(client: &Client, namespace: &str, limit: Duration) -> Result<(), BenchError> {
    tokio::time::timeout(limit, cleanup_unbounded(client, namespace))
        .await
        .map_err(|_| BenchError::Timeout(format!("clean-up of namespace {namespace}"), limit.as_secs()))?
}

async fn cleanup_unbounded(client: &Client, namespace: &str) -> Result<(), BenchError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    if let Err(e) = pods.delete_collection(&now, &ListParams::default()).await {
        tracing::warn!("deletecollection of pods failed ({e}); deleting one by one");
        let names: Vec<String> = pods
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| BenchError::api("listing pods to delete", e))?
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        let failures = stream::iter(names)
            .map(|name| {
                let pods = pods.clone();
                let now = now.clone();
                async move { pods.delete(&name, &now).await.err() }
            })
            .buffer_unordered(16)
            .filter_map(|e| async move { e })
            .count()
            .await;
        if failures > 0 {
            tracing::warn!("{failures} pod deletes failed");
        }
    }
    Api::<Namespace>::all(client.clone())
        .delete(namespace, &DeleteParams::default())
        .await
        .map_err(|e| BenchError::api(format!("deleting namespace {namespace}"), e))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_minimal_unscheduled_busybox() {
        let p = pod("p-1");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["metadata"]["name"], "p-1");
        assert_eq!(json["spec"]["containers"][0]["image"], "busybox");
        assert_eq!(json["spec"]["containers"].as_array().unwrap().len(), 1);
        assert!(json["spec"].get("nodeName").is_none());
        assert!(json.get("status").is_none());
    }

    #[test]
    fn namespace_names_are_valid_dns_labels() {
        let name = namespace_name();
        assert!(name.len() <= 63);
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert_eq!(base36(0), "0");
        assert_eq!(base36(36 * 36 + 35), "10z");
    }
}
