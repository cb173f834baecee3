//! Finding a pod's containers and sandbox in the runtime by the kubelet
//! labels ([`crate::labels`]) the agent puts on them.
//!
//! Must not: change runtime state.

use std::collections::HashMap;

use k8s_cri::v1::{
    Container, ContainerFilter, ContainerState, ContainerStatusRequest, ListContainersRequest,
    ListPodSandboxRequest, PodSandboxFilter, PodSandboxState, PodSandboxStateValue,
};

use super::HttpError;
use crate::cri::CriClient;
use crate::labels;

/// One container instance as the node API needs it.
#[derive(Debug, Clone)]
pub(super) struct Found {
    /// The runtime's container ID.
    pub id: String,
    /// Its log file (absolute, as containerd reports it).
    pub log_path: String,
}

/// The instance of `container` in pod `ns/pod` that a request means: the
/// newest one, or with `previous` the one before it.
pub(super) async fn container(
    cri: &CriClient,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<Found, HttpError> {
    let labels = HashMap::from([
        (labels::POD_NAMESPACE.to_string(), ns.to_string()),
        (labels::POD_NAME.to_string(), pod.to_string()),
        (labels::CONTAINER_NAME.to_string(), container.to_string()),
    ]);
    let filter = ContainerFilter {
        label_selector: labels,
        ..Default::default()
    };
    let items = cri
        .runtime
        .clone()
        .list_containers(ListContainersRequest { filter: Some(filter) })
        .await
        .map_err(|s| HttpError::internal(format!("container runtime: {s}")))?
        .into_inner()
        .containers;
    let instances = newest_pod_instances(items);
    let index = usize::from(previous);
    let Some(chosen) = instances.get(index) else {
        let msg = if previous {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        } else {
            format!("container \"{container}\" in pod \"{pod}\" is not available")
        };
        return Err(HttpError::bad_request(msg));
    };
    let status = cri
        .runtime
        .clone()
        .container_status(ContainerStatusRequest {
            container_id: chosen.id.clone(),
            verbose: false,
        })
        .await
        .map_err(|s| HttpError::internal(format!("container runtime: {s}")))?
        .into_inner()
        .status
        .ok_or_else(|| HttpError::internal("container runtime returned no status"))?;
    Ok(Found {
        id: chosen.id.clone(),
        log_path: status.log_path,
    })
}

/// The instances of the newest pod (by UID) among `items`, newest first.
fn newest_pod_instances(mut items: Vec<Container>) -> Vec<Container> {
    let uid_of = |c: &Container| c.labels.get(labels::POD_UID).cloned().unwrap_or_default();
    let Some(newest) = items.iter().max_by_key(|c| c.created_at) else {
        return items;
    };
    let uid = uid_of(newest);
    items.retain(|c| uid_of(c) == uid);
    items.sort_by_key(|c| {
        let attempt = c.metadata.as_ref().map_or(0, |m| m.attempt);
        std::cmp::Reverse((attempt, c.created_at))
    });
    items
}

/// True while the container runs (or is about to): a followed log goes on.
pub(super) async fn is_running(cri: &CriClient, id: &str) -> bool {
    let reply = cri
        .runtime
        .clone()
        .container_status(ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        })
        .await;
    match reply {
        Ok(r) => r.into_inner().status.is_some_and(|s| {
            s.state == ContainerState::ContainerRunning as i32
                || s.state == ContainerState::ContainerCreated as i32
        }),
        Err(_) => false,
    }
}

/// The ready sandbox of pod `ns/pod` (the newest if there are several).
pub(super) async fn sandbox(cri: &CriClient, ns: &str, pod: &str) -> Result<String, HttpError> {
    let filter = PodSandboxFilter {
        state: Some(PodSandboxStateValue {
            state: PodSandboxState::SandboxReady as i32,
        }),
        label_selector: HashMap::from([
            (labels::POD_NAMESPACE.to_string(), ns.to_string()),
            (labels::POD_NAME.to_string(), pod.to_string()),
        ]),
        ..Default::default()
    };
    let items = cri
        .runtime
        .clone()
        .list_pod_sandbox(ListPodSandboxRequest { filter: Some(filter) })
        .await
        .map_err(|s| HttpError::internal(format!("container runtime: {s}")))?
        .into_inner()
        .items;
    items
        .into_iter()
        .max_by_key(|s| s.created_at)
        .map(|s| s.id)
        .ok_or_else(|| HttpError::not_found(format!("pod \"{pod}\" has no running sandbox on this node")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_cri::v1::ContainerMetadata;

    fn c(id: &str, uid: &str, attempt: u32, created_at: i64) -> Container {
        Container {
            id: id.into(),
            metadata: Some(ContainerMetadata {
                name: "c".into(),
                attempt,
            }),
            created_at,
            labels: HashMap::from([(labels::POD_UID.to_string(), uid.to_string())]),
            ..Default::default()
        }
    }

    #[test]
    fn newest_pod_wins_and_attempts_sort_newest_first() {
        let items = vec![
            c("old-pod", "u1", 5, 10),
            c("a0", "u2", 0, 20),
            c("a2", "u2", 2, 40),
            c("a1", "u2", 1, 30),
        ];
        let ids: Vec<String> = newest_pod_instances(items).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["a2", "a1", "a0"]);
    }
}
