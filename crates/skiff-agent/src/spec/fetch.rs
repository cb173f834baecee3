//! Reads what a container's environment refers to from the API: the
//! ConfigMaps and Secrets named by `env`/`envFrom`, and the Services whose
//! link variables the container gets.

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use kube::Api;
use kube::api::ListParams;

use super::SpecError;
use super::env::EnvSources;
use super::fieldref::DownwardInputs;

/// The Service whose link variables every container gets.
const MASTER_SERVICE: &str = "kubernetes";

/// Fetches the sources `container` of `pod` refers to.
pub async fn fetch_sources(
    client: &kube::Client,
    pod: &Pod,
    container: &Container,
    downward: DownwardInputs,
) -> Result<EnvSources, SpecError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut sources = EnvSources {
        downward,
        ..Default::default()
    };
    let mut cm_names = std::collections::BTreeSet::new();
    let mut secret_names = std::collections::BTreeSet::new();
    for from in container.env_from.iter().flatten() {
        cm_names.extend(from.config_map_ref.as_ref().map(|r| r.name.clone()));
        secret_names.extend(from.secret_ref.as_ref().map(|r| r.name.clone()));
    }
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else { continue };
        cm_names.extend(from.config_map_key_ref.as_ref().map(|r| r.name.clone()));
        secret_names.extend(from.secret_key_ref.as_ref().map(|r| r.name.clone()));
    }
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for name in cm_names {
        let found = cms
            .get_opt(&name)
            .await
            .map_err(|e| api_error(format!("configmap {name:?}"), e))?;
        sources.config_maps.insert(name, found);
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for name in secret_names {
        let found = secrets
            .get_opt(&name)
            .await
            .map_err(|e| api_error(format!("secret {name:?}"), e))?;
        sources.secrets.insert(name, found);
    }
    sources.services = services(client, pod).await?;
    Ok(sources)
}

/// The pod namespace's Services (unless `enableServiceLinks: false`) and
/// `default/kubernetes`, the former winning on a name clash.
async fn services(client: &kube::Client, pod: &Pod) -> Result<Vec<Service>, SpecError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut out = Vec::new();
    if links {
        let api: Api<Service> = Api::namespaced(client.clone(), namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| api_error("services".into(), e))?;
        out.extend(list.items);
    }
    let has_master = |list: &[Service]| {
        list.iter()
            .any(|s| s.metadata.name.as_deref() == Some(MASTER_SERVICE))
    };
    if !(links && namespace == "default" && has_master(&out)) {
        let api: Api<Service> = Api::namespaced(client.clone(), "default");
        if let Some(master) = api
            .get_opt(MASTER_SERVICE)
            .await
            .map_err(|e| api_error("service default/kubernetes".into(), e))?
        {
            out.retain(|s| s.metadata.name.as_deref() != Some(MASTER_SERVICE));
            out.push(master);
        }
    }
    Ok(out)
}

fn api_error(what: String, source: kube::Error) -> SpecError {
    SpecError::Api { what, source }
}
