//! DefaultBinder: writes the decision through the `pods/{name}/binding`
//! subresource (a core/v1 Binding naming the node).

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use crate::framework::{BindPlugin, Code, Plugin, Status};
use crate::pod_info::PodInfo;

/// The plugin.
#[derive(Clone)]
pub struct DefaultBinder {
    client: kube::Client,
}

impl DefaultBinder {
    /// A binder using `client`.
    pub fn new(client: kube::Client) -> Self {
        DefaultBinder { client }
    }
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        "DefaultBinder"
    }
}

/// The Binding object for `pod` → `node`.
pub fn binding(pod: &PodInfo, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta {
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: Some(pod.uid.clone()).filter(|u| !u.is_empty()),
            ..Default::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.into()),
            ..Default::default()
        },
    }
}

impl BindPlugin for DefaultBinder {
    fn bind(&self, pod: Arc<PodInfo>, node: String) -> BoxFuture<'static, Status> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        Box::pin(async move {
            let body = binding(&pod, &node);
            match api
                .create_subresource::<Binding, serde_json::Value>(
                    "binding",
                    &pod.name,
                    &PostParams::default(),
                    &body,
                )
                .await
            {
                Ok(_) => Status::success(),
                Err(e) => Status::new(Code::Error, format!("binding rejected: {e}")),
            }
        })
    }
}
