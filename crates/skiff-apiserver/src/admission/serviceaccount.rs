//! ServiceAccount admission for new pods (upstream's `ServiceAccount`
//! plugin, mutating part): unless `automountServiceAccountToken` is false on
//! the pod (or, when the pod does not say, on its service account), adds the
//! projected `kube-api-access-XXXXX` volume (a bound token, the cluster CA
//! from the `kube-root-ca.crt` ConfigMap, the namespace) and mounts it
//! read-only at [`MOUNT_PATH`] in every container and init container.
//!
//! Differs from upstream: a pod whose service account or `kube-root-ca.crt`
//! ConfigMap does not exist (yet) is admitted unchanged instead of being
//! rejected, so servers without the controllers that create them keep
//! accepting pods. `spec.serviceAccountName` is defaulted earlier (defaults).
//!
//! Must not: write objects.

use rand::Rng;
use serde_json::{Value, json};

use crate::server::ApiServer;
use crate::serviceaccount_token::lookup;

/// Where the token, `ca.crt` and `namespace` appear in containers.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The ConfigMap with the cluster CA in every namespace.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// The token lifetime the volume asks for (upstream's 1 hour + 7 seconds).
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3607;

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Adds the service-account volume and mounts to `pod` (a defaulted Pod).
pub fn admit_pod(server: &ApiServer, namespace: Option<&str>, pod: &mut Value) {
    let Some(ns) = namespace else { return };
    let spec = &pod["spec"];
    let sa_name = spec["serviceAccountName"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let Some(sa) = lookup(server, "serviceaccounts", ns, &sa_name) else {
        return;
    };
    let automount = spec["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| sa["automountServiceAccountToken"].as_bool())
        .unwrap_or(true);
    if !automount || lookup(server, "configmaps", ns, ROOT_CA_CONFIGMAP).is_none() {
        return;
    }
    add_volume(&mut pod["spec"], &volume_name());
}

fn volume_name() -> String {
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| NAME_CHARS[rng.random_range(0..NAME_CHARS.len())] as char)
        .collect();
    format!("kube-api-access-{suffix}")
}

/// Adds volume `name` to `spec` and a mount of it to every container that
/// does not already mount something at [`MOUNT_PATH`].
fn add_volume(spec: &mut Value, name: &str) {
    let mut mounted = false;
    for key in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(key).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            if !c["volumeMounts"].is_array() {
                c["volumeMounts"] = json!([]);
            }
            let Some(mounts) = c["volumeMounts"].as_array_mut() else {
                continue;
            };
            if mounts.iter().any(|m| m["mountPath"].as_str() == Some(MOUNT_PATH)) {
                continue;
            }
            mounts.push(json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH}));
            mounted = true;
        }
    }
    if !mounted {
        return;
    }
    if !spec["volumes"].is_array() {
        spec["volumes"] = json!([]);
    }
    if let Some(volumes) = spec["volumes"].as_array_mut() {
        volumes.push(volume(name));
    }
}

fn volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [
                    {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
                ]}},
            ],
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_container_gets_the_mount_once() {
        let mut spec = json!({
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "x", "mountPath": MOUNT_PATH}]}],
        });
        let name = volume_name();
        assert!(name.starts_with("kube-api-access-") && name.len() == 21);
        add_volume(&mut spec, &name);
        assert_eq!(
            spec["initContainers"][0]["volumeMounts"][0]["name"],
            name.as_str()
        );
        assert_eq!(spec["containers"][0]["volumeMounts"][0]["readOnly"], true);
        assert_eq!(spec["containers"][1]["volumeMounts"].as_array().unwrap().len(), 1);
        let vol = &spec["volumes"][0];
        assert_eq!(vol["name"], name.as_str());
        assert_eq!(
            vol["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        assert_eq!(
            vol["projected"]["sources"][1]["configMap"]["name"],
            "kube-root-ca.crt"
        );
    }
}
