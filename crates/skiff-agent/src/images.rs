//! Images for pods: the air-gap import of `images_dir` at start, and
//! EnsureImage — ImageStatus, then PullImage as the container's
//! imagePullPolicy says, with credentials from the pod's imagePullSecrets.
//! Failures carry the kubelet's waiting reasons (ErrImagePull,
//! ErrImageNeverPull). Back-off between pulls is the pod worker's.

use k8s_cri::v1::{AuthConfig, ImageSpec, ImageStatusRequest, PullImageRequest};
use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use kube::Api;

use crate::config::AgentConfig;
use crate::cri::CriClient;

/// Why a container's image is not there; `reason` is the waiting reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct ImageError {
    /// `ErrImagePull`, `ErrImageNeverPull` or `InvalidImageName`.
    pub reason: String,
    /// The human message shown in the container's waiting state.
    pub message: String,
}

/// Imports every tarball in `cfg.images_dir()` into the runtime's `k8s.io`
/// namespace; returns the image names imported. Runs `ctr`, so call it from
/// a blocking thread.
pub fn import_images_dir(cfg: &AgentConfig) -> Result<Vec<String>, skiff_images::ImportError> {
    skiff_images::import_dir(&cfg.ctr_binary, &socket_path(cfg), &cfg.images_dir())
}

fn socket_path(cfg: &AgentConfig) -> std::path::PathBuf {
    let raw = cfg.container_runtime_endpoint.to_string_lossy();
    std::path::PathBuf::from(raw.strip_prefix("unix://").unwrap_or(&raw))
}

/// The pull policy in effect: the field, else the API default (Always for
/// `:latest` or untagged images, IfNotPresent otherwise).
pub fn pull_policy(container: &Container) -> &str {
    match container.image_pull_policy.as_deref() {
        Some(p) if !p.is_empty() => p,
        _ => {
            let image = container.image.as_deref().unwrap_or_default();
            let last = image.rsplit('/').next().unwrap_or(image);
            if image.contains('@') {
                "IfNotPresent"
            } else {
                match last.split_once(':') {
                    Some((_, "latest")) | None => "Always",
                    Some(_) => "IfNotPresent",
                }
            }
        }
    }
}

/// The registry host of an image reference (`docker.io` for Docker Hub names).
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// The id of `image` if the runtime has it.
async fn present(cri: &CriClient, image: &str) -> Result<Option<String>, tonic::Status> {
    let reply = cri
        .image
        .clone()
        .image_status(ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.to_string(),
                ..ImageSpec::default()
            }),
            verbose: false,
        })
        .await?
        .into_inner();
    Ok(reply.image.map(|i| i.id))
}

/// Makes sure the image of `container` is present as its pull policy asks
/// and returns the image reference to create the container from.
pub async fn ensure_image(
    cri: &CriClient,
    client: &kube::Client,
    pod: &Pod,
    container: &Container,
) -> Result<String, ImageError> {
    let image = container.image.clone().unwrap_or_default();
    if image.is_empty() {
        return Err(ImageError {
            reason: "InvalidImageName".into(),
            message: format!("Failed to apply default image tag \"{image}\": empty image name"),
        });
    }
    let policy = pull_policy(container);
    let have = present(cri, &image)
        .await
        .map_err(|e| pull_error(&image, &e.to_string()))?;
    match (policy, have) {
        ("Never", Some(id)) | ("IfNotPresent", Some(id)) => return Ok(id),
        ("Never", None) => {
            return Err(ImageError {
                reason: "ErrImageNeverPull".into(),
                message: format!("Container image \"{image}\" is not present with pull policy of Never"),
            });
        }
        _ => {}
    }
    let auth = pull_auth(client, pod, &image).await;
    let pulled = cri
        .image
        .clone()
        .pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: image.clone(),
                ..ImageSpec::default()
            }),
            auth,
            sandbox_config: None,
        })
        .await;
    match pulled {
        Ok(reply) => Ok(reply.into_inner().image_ref),
        Err(e) => match present(cri, &image).await {
            // An air-gapped node keeps running what it has when the registry
            // is unreachable (policy Always on a local image).
            Ok(Some(id)) => {
                tracing::warn!(image, error = %e.message(), "pull failed; using the local image");
                Ok(id)
            }
            _ => Err(pull_error(&image, e.message())),
        },
    }
}

fn pull_error(image: &str, detail: &str) -> ImageError {
    ImageError {
        reason: "ErrImagePull".into(),
        message: format!("failed to pull and unpack image \"{image}\": {detail}"),
    }
}

/// Credentials for `image` from the pod's `kubernetes.io/dockerconfigjson`
/// pull secrets, matched by registry host.
async fn pull_auth(client: &kube::Client, pod: &Pod, image: &str) -> Option<AuthConfig> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let refs = pod.spec.as_ref()?.image_pull_secrets.clone().unwrap_or_default();
    let registry = registry_of(image);
    for r in refs {
        let Ok(secret) = secrets.get(&r.name).await else {
            continue;
        };
        let Some(data) = secret.data.as_ref().and_then(|d| d.get(".dockerconfigjson")) else {
            continue;
        };
        if let Some(auth) = auth_from_dockerconfig(&data.0, registry) {
            return Some(auth);
        }
    }
    None
}

/// The entry of a `.dockerconfigjson` document for `registry`.
pub fn auth_from_dockerconfig(json: &[u8], registry: &str) -> Option<AuthConfig> {
    let doc: serde_json::Value = serde_json::from_slice(json).ok()?;
    let auths = doc.get("auths")?.as_object()?;
    let (server, entry) = auths.iter().find(|(key, _)| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        host == registry || (registry == "docker.io" && host == "index.docker.io")
    })?;
    let field = |k: &str| {
        entry
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    Some(AuthConfig {
        username: field("username"),
        password: field("password"),
        auth: field("auth"),
        server_address: server.clone(),
        ..AuthConfig::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str, policy: Option<&str>) -> Container {
        Container {
            image: Some(image.into()),
            image_pull_policy: policy.map(str::to_string),
            ..Container::default()
        }
    }

    #[test]
    fn default_pull_policy_follows_the_tag() {
        assert_eq!(pull_policy(&container("busybox", None)), "Always");
        assert_eq!(pull_policy(&container("busybox:latest", None)), "Always");
        assert_eq!(
            pull_policy(&container("skiff.local/busybox:1", None)),
            "IfNotPresent"
        );
        assert_eq!(pull_policy(&container("localhost:5000/app", None)), "Always");
        assert_eq!(pull_policy(&container("busybox", Some("Never"))), "Never");
    }

    #[test]
    fn registry_hosts_and_docker_config_auth() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox:1"), "docker.io");
        assert_eq!(registry_of("reg.example:5000/a/b"), "reg.example:5000");
        let doc = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"reg.example":{"username":"u","password":"p"}}}"#;
        assert_eq!(
            auth_from_dockerconfig(doc, "docker.io")
                .map(|a| a.auth)
                .as_deref(),
            Some("dTpw")
        );
        let a = auth_from_dockerconfig(doc, "reg.example").unwrap_or_default();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p"));
        assert!(auth_from_dockerconfig(doc, "other.example").is_none());
    }
}
