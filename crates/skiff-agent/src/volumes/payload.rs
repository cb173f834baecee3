//! The files of configMap, secret and downwardAPI volumes (alone or as
//! projected sources): which keys become which paths with which modes,
//! following upstream's `items`, `defaultMode`/`mode` and `optional` rules.
//!
//! Pure: objects are fetched by the caller.

use k8s_openapi::api::core::v1::{ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret};

use super::VolumeError;
use super::atomic::{FileContent, Payload};
use crate::spec::fieldref::{DownwardInputs, field_value, resource_value};

/// Mode of volume files when neither `defaultMode` nor `mode` says.
pub const DEFAULT_MODE: i32 = 0o644;

fn mode(m: Option<i32>, default: i32) -> u32 {
    u32::try_from(m.unwrap_or(default)).unwrap_or(0o644) & 0o7777
}

/// Files of a ConfigMap: every key of `data` and `binaryData`, or only
/// `items`. `cm` is None when the ConfigMap does not exist.
pub fn config_map(
    name: &str,
    cm: Option<&ConfigMap>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, VolumeError> {
    let Some(cm) = cm else {
        return if optional {
            Ok(Payload::new())
        } else {
            Err(VolumeError::NotFound(format!("configmap \"{name}\" not found")))
        };
    };
    let lookup = |key: &str| -> Option<Vec<u8>> {
        cm.data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|s| s.as_bytes().to_vec())
            .or_else(|| {
                cm.binary_data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .map(|b| b.0.clone())
            })
    };
    let mut keys: Vec<String> = cm.data.iter().flatten().map(|(k, _)| k.clone()).collect();
    keys.extend(cm.binary_data.iter().flatten().map(|(k, _)| k.clone()));
    project(
        &keys,
        lookup,
        items,
        default_mode,
        optional,
        "configmap references non-existent config key",
    )
}

/// Files of a Secret: every key of `data`, or only `items`.
pub fn secret(
    name: &str,
    secret: Option<&Secret>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, VolumeError> {
    let Some(secret) = secret else {
        return if optional {
            Ok(Payload::new())
        } else {
            Err(VolumeError::NotFound(format!("secret \"{name}\" not found")))
        };
    };
    let lookup = |key: &str| secret.data.as_ref().and_then(|d| d.get(key)).map(|b| b.0.clone());
    let keys: Vec<String> = secret.data.iter().flatten().map(|(k, _)| k.clone()).collect();
    project(
        &keys,
        lookup,
        items,
        default_mode,
        optional,
        "references non-existent secret key",
    )
}

fn project(
    keys: &[String],
    lookup: impl Fn(&str) -> Option<Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
    missing: &str,
) -> Result<Payload, VolumeError> {
    let mut out = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for key in keys {
                if let Some(data) = lookup(key) {
                    out.insert(
                        key.clone(),
                        FileContent {
                            data,
                            mode: mode(None, default_mode),
                        },
                    );
                }
            }
        }
        Some(items) => {
            for item in items {
                match lookup(&item.key) {
                    Some(data) => {
                        out.insert(
                            item.path.clone(),
                            FileContent {
                                data,
                                mode: mode(item.mode, default_mode),
                            },
                        );
                    }
                    None if optional => {}
                    None => return Err(VolumeError::Invalid(format!("{missing}: {}", item.key))),
                }
            }
        }
    }
    Ok(out)
}

/// Files of a downwardAPI volume (or projected source) for `pod`.
pub fn downward(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
    inputs: &DownwardInputs,
) -> Result<Payload, VolumeError> {
    let mut out = Payload::new();
    for item in items {
        let value = if let Some(sel) = &item.field_ref {
            field_value(pod, sel, inputs, true).map_err(|e| VolumeError::Invalid(e.to_string()))?
        } else if let Some(sel) = &item.resource_field_ref {
            let name = sel.container_name.as_deref().unwrap_or_default();
            let container = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
                .find(|c| c.name == name)
                .ok_or_else(|| VolumeError::Invalid(format!("container {name:?} not found in the pod")))?;
            resource_value(container, sel, inputs).map_err(|e| VolumeError::Invalid(e.to_string()))?
        } else {
            String::new()
        };
        out.insert(
            item.path.clone(),
            FileContent {
                data: value.into_bytes(),
                mode: mode(item.mode, default_mode),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn cm() -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "cfg"},
            "data": {"game.properties": "lives=3", "ui": "dark"},
            "binaryData": {"logo": "AAE="}
        }))
        .unwrap()
    }

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        }
    }

    #[test]
    fn all_keys_with_default_mode_or_selected_items() {
        let all = config_map("cfg", Some(&cm()), None, 0o600, false).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all["game.properties"].data, b"lives=3");
        assert_eq!(all["logo"].data, vec![0, 1]);
        assert_eq!(all["ui"].mode, 0o600);
        let items = [item("ui", "conf/ui.txt", Some(0o400))];
        let some = config_map("cfg", Some(&cm()), Some(&items), DEFAULT_MODE, false).unwrap();
        assert_eq!(some.keys().collect::<Vec<_>>(), ["conf/ui.txt"]);
        assert_eq!(some["conf/ui.txt"].mode, 0o400);
    }

    #[test]
    fn missing_objects_and_keys_follow_optional() {
        let err = config_map("nope", None, None, DEFAULT_MODE, false).unwrap_err();
        assert_eq!(err.to_string(), "configmap \"nope\" not found");
        assert!(
            config_map("nope", None, None, DEFAULT_MODE, true)
                .unwrap()
                .is_empty()
        );
        let items = [item("absent", "a", None)];
        let err = config_map("cfg", Some(&cm()), Some(&items), DEFAULT_MODE, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configmap references non-existent config key: absent"
        );
        assert!(
            config_map("cfg", Some(&cm()), Some(&items), DEFAULT_MODE, true)
                .unwrap()
                .is_empty()
        );
        let s = Secret {
            data: Some([("password".to_string(), ByteString(b"s3cr3t".to_vec()))].into()),
            ..Default::default()
        };
        let files = secret("db", Some(&s), None, 0o400, false).unwrap();
        assert_eq!(
            files["password"],
            FileContent {
                data: b"s3cr3t".to_vec(),
                mode: 0o400
            }
        );
        let bad = [item("user", "u", None)];
        assert!(secret("db", Some(&s), Some(&bad), DEFAULT_MODE, false).is_err());
    }

    #[test]
    fn downward_files_hold_fields_and_resources() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "labels": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "c", "image": "i",
                      "resources": {"limits": {"memory": "32Mi"}}}]}
        }))
        .unwrap();
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(serde_json::json!([
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
            {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}}
        ]))
        .unwrap();
        let files = downward(&pod, &items, DEFAULT_MODE, &DownwardInputs::default()).unwrap();
        assert_eq!(files["labels"].data, b"a=\"1\"\nb=\"2\"");
        assert_eq!(
            files["name"],
            FileContent {
                data: b"web".to_vec(),
                mode: 0o400
            }
        );
        assert_eq!(files["mem"].data, b"32");
    }
}
