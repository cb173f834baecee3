//! Helpers shared by the workload controllers: label-selector matching,
//! controller ownerReferences (adopt/orphan), pods built from a template,
//! pod readiness/availability as upstream counts them, the order in which a
//! ReplicaSet gives up pods, and the pod-template hash.
//!
//! Must not: talk to the API server beyond the small adopt/release/create
//! calls here; decisions live in the controllers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::{Selector, SelectorExt};
use kube::{Resource, ResourceExt};

/// Why a selector or owner could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UtilError {
    /// The selector is not a valid label selector.
    #[error("invalid selector: {0}")]
    Selector(String),
    /// A call to the API server failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// A parsed label selector; an empty or absent selector matches nothing, as
/// for workload controllers upstream.
#[derive(Debug, Clone)]
pub struct Matcher(Option<Selector>);

impl Matcher {
    /// Parses `sel`.
    pub fn new(sel: Option<&LabelSelector>) -> Result<Self, UtilError> {
        match sel {
            None => Ok(Matcher(None)),
            Some(s)
                if s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                    && s.match_expressions.as_ref().is_none_or(|e| e.is_empty()) =>
            {
                Ok(Matcher(None))
            }
            Some(s) => {
                let parsed: Selector = s
                    .clone()
                    .try_into()
                    .map_err(|e: kube::core::ParseExpressionError| UtilError::Selector(e.to_string()))?;
                Ok(Matcher(Some(parsed)))
            }
        }
    }

    /// Whether `labels` satisfy the selector.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.as_ref().is_some_and(|s| s.matches(labels))
    }
}

/// The controller ownerReference (controller=true, blockOwnerDeletion=true)
/// pointing at `owner`.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The controller ownerReference of `meta`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// How an object relates to a would-be owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Controlled by the owner and matching: keep.
    Owned,
    /// No controller and matching: adopt.
    Adopt,
    /// Controlled by the owner but no longer matching: release.
    Release,
    /// Someone else's, or unrelated.
    Ignore,
}

/// Decides what `owner_uid` should do with an object, as upstream's
/// ControllerRefManager: deleted objects are never adopted.
pub fn claim(meta: &ObjectMeta, owner_uid: &str, matcher: &Matcher) -> Claim {
    let empty = BTreeMap::new();
    let matches = matcher.matches(meta.labels.as_ref().unwrap_or(&empty));
    match controller_of(meta) {
        Some(r) if r.uid == owner_uid => {
            if matches {
                Claim::Owned
            } else {
                Claim::Release
            }
        }
        Some(_) => Claim::Ignore,
        None if matches && meta.deletion_timestamp.is_none() => Claim::Adopt,
        None => Claim::Ignore,
    }
}

/// Adopts `name` by adding a controller ownerReference (guarded by the
/// object's uid so a recreated object with the same name is not taken).
pub async fn adopt<K>(api: &Api<K>, name: &str, uid: &str, owner: OwnerReference) -> Result<(), UtilError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "metadata": { "uid": uid, "ownerReferences": [owner] }
    });
    api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    Ok(())
}

/// Releases `name` by removing the ownerReference with `owner_uid`.
pub async fn release<K>(api: &Api<K>, obj: &K, owner_uid: &str) -> Result<(), UtilError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let refs: Vec<OwnerReference> = obj
        .meta()
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != owner_uid)
        .cloned()
        .collect();
    let patch = serde_json::json!({
        "metadata": { "uid": obj.meta().uid, "ownerReferences": refs }
    });
    api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

/// A pod made from `template`, named `<prefix><random>` by the server
/// (generateName), controlled by `owner`.
pub fn pod_from_template(template: &PodTemplateSpec, prefix: &str, owner: OwnerReference) -> Pod {
    let tmeta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(prefix.to_string()),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Creates a pod from a template in `ns`; returns the created pod.
pub async fn create_pod(api: &Api<Pod>, pod: &Pod) -> Result<Pod, UtilError> {
    Ok(api.create(&PostParams::default(), pod).await?)
}

/// Whether the pod is terminating or finished (not counted as active).
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded") | Some("Failed"))
}

/// Whether the pod has condition Ready=True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When the pod's Ready condition last turned True, if it is ready.
/// A Ready=True condition without a time counts as ready since forever.
pub fn ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    let conds = pod.status.as_ref()?.conditions.as_ref()?;
    let c = conds.iter().find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(
        c.last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
    )
}

/// Whether the pod has been ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(t) => now.as_second() - t.as_second() >= i64::from(min_ready_seconds),
    }
}

/// Seconds until the pod becomes available, if it is ready but not yet.
pub fn seconds_to_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> Option<i64> {
    let t = ready_since(pod)?;
    let left = i64::from(min_ready_seconds) - (now.as_second() - t.as_second());
    (left > 0).then_some(left)
}

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => 1,
        Some("Unknown") => 0,
        Some("Running") => 2,
        _ => 0,
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| c.restart_count)
        .sum()
}

/// Orders pods so the ones to delete first come first, as upstream's
/// ActivePods ordering: unassigned < assigned; Unknown < Pending < Running;
/// not ready < ready; ready for less time < longer; more restarts < fewer;
/// newer < older.
pub fn deletion_order(a: &Pod, b: &Pod) -> std::cmp::Ordering {
    let assigned = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some_and(|n| !n.is_empty())
    };
    let ready_at = |p: &Pod| ready_since(p);
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    assigned(a)
        .cmp(&assigned(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(is_ready(a).cmp(&is_ready(b)))
        .then_with(|| match (ready_at(a), ready_at(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            _ => std::cmp::Ordering::Equal,
        })
        .then(restarts(b).cmp(&restarts(a)))
        .then_with(|| created(b).cmp(&created(a)))
}

const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a 32-bit hash of `data`.
pub fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// A label-safe encoding of a hash (no vowels, no confusable characters),
/// as upstream's `rand.SafeEncodeString` of the decimal hash.
pub fn safe_encode(h: u32) -> String {
    h.to_string()
        .bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

/// The pod-template hash of a template (plus a collision count), stable
/// across processes for the same template.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(c.to_string().as_bytes());
    }
    safe_encode(fnv32a(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(Into::into),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    last_transition_time: Some(Time(jiff::Timestamp::now())),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn deletes_unscheduled_then_pending_then_unready_first() {
        let mut pods = [
            pod("ready", Some("n1"), "Running", true),
            pod("unready", Some("n1"), "Running", false),
            pod("pending", Some("n1"), "Pending", false),
            pod("unscheduled", None, "Pending", false),
        ];
        pods.sort_by(deletion_order);
        let names: Vec<_> = pods.iter().map(|p| p.name_any()).collect();
        assert_eq!(names, ["unscheduled", "pending", "unready", "ready"]);
    }

    #[test]
    fn empty_selector_matches_nothing_and_labels_match() {
        let m = Matcher::new(Some(&LabelSelector::default())).unwrap();
        assert!(!m.matches(&BTreeMap::new()));
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        };
        let m = Matcher::new(Some(&sel)).unwrap();
        assert!(m.matches(&[("app".to_string(), "web".to_string())].into()));
        assert!(!m.matches(&[("app".to_string(), "db".to_string())].into()));
    }

    #[test]
    fn claim_adopts_orphans_and_releases_mismatches() {
        let sel = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        };
        let m = Matcher::new(Some(&sel)).unwrap();
        let mut meta = ObjectMeta {
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        };
        assert_eq!(claim(&meta, "u1", &m), Claim::Adopt);
        meta.owner_references = Some(vec![OwnerReference {
            uid: "u1".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        assert_eq!(claim(&meta, "u1", &m), Claim::Owned);
        assert_eq!(claim(&meta, "u2", &m), Claim::Ignore);
        meta.labels = Some(BTreeMap::new());
        assert_eq!(claim(&meta, "u1", &m), Claim::Release);
    }

    #[test]
    fn template_hash_is_stable_and_label_safe() {
        let t = PodTemplateSpec::default();
        let a = template_hash(&t, None);
        assert_eq!(a, template_hash(&t, None));
        assert_ne!(a, template_hash(&t, Some(1)));
        assert!(a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}

/// What one reconcile of a workload controller can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A call to the API server failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A helper failed (selector, adoption, history).
    #[error(transparent)]
    Util(#[from] UtilError),
    /// The object has no namespace.
    #[error("object without a namespace")]
    NoNamespace,
}

/// State a workload controller's reconciles share.
pub struct ReconcileCtx {
    /// The API client.
    pub client: kube::Client,
    /// Event recorder (named after the controller, e.g. `job-controller`).
    pub recorder: crate::events::Recorder,
}
