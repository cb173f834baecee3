//! Projected `serviceAccountToken` sources: a token for the pod's service
//! account, bound to the pod, requested with the TokenRequest API
//! (`POST serviceaccounts/NAME/token`) and refreshed when 80% of its
//! lifetime has passed, as the kubelet's token manager does.

use std::path::Path;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccountTokenProjection};
use kube::Api;
use kube::api::PostParams;

use super::VolumeError;
use super::atomic::DATA_DIR_NAME;

/// Default token lifetime (`expirationSeconds`), one hour.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// The token for `source`: the one already in the volume at `volume_dir`
/// while it is fresh, else a new one from the API server.
pub async fn token(
    client: &kube::Client,
    pod: &Pod,
    source: &ServiceAccountTokenProjection,
    volume_dir: &Path,
) -> Result<Vec<u8>, VolumeError> {
    let lifetime = source
        .expiration_seconds
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS)
        .max(600);
    let current = volume_dir.join(DATA_DIR_NAME).join(&source.path);
    if let Ok(meta) = std::fs::metadata(&current) {
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok());
        let refresh_after = Duration::from_secs(u64::try_from(lifetime).unwrap_or(3600) * 8 / 10);
        if age.is_some_and(|a| a < refresh_after)
            && let Ok(bytes) = std::fs::read(&current)
        {
            return Ok(bytes);
        }
    }
    request(client, pod, source, lifetime).await
}

async fn request(
    client: &kube::Client,
    pod: &Pod,
    source: &ServiceAccountTokenProjection,
    lifetime: i64,
) -> Result<Vec<u8>, VolumeError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: source
                .audience
                .iter()
                .filter(|a| !a.is_empty())
                .cloned()
                .collect(),
            expiration_seconds: Some(lifetime),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let api: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let reply = api
        .create_token_request(account, &PostParams::default(), &req)
        .await
        .map_err(|source| VolumeError::TokenRequest {
            account: format!("{namespace}/{account}"),
            source,
        })?;
    let token = reply.status.map(|s| s.token).unwrap_or_default();
    if token.is_empty() {
        return Err(VolumeError::Invalid(format!(
            "the TokenRequest for service account {namespace}/{account} returned no token"
        )));
    }
    Ok(token.into_bytes())
}
