//! ControllerRevision history shared by the DaemonSet and StatefulSet
//! controllers, as upstream's `controller/history`: one revision per distinct
//! pod template, named `<owner>-<hash>`, whose `data` is the strategic-merge
//! patch `kubectl rollout undo` applies to go back to it; the newest template
//! always holds the highest `revision` number; old revisions beyond
//! `revisionHistoryLimit` that no live pod uses are deleted.
//!
//! Must not: decide which pods to replace; it only keeps the revision objects.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::workload_util::{self as wu, Claim, Matcher, UtilError};

/// Label carrying a revision's hash (and, on pods, which revision made them).
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";

/// Most name collisions tried before giving up for this reconcile.
const MAX_COLLISIONS: i32 = 10;

/// The revisions of one owner after [`sync`].
#[derive(Debug, Clone)]
pub struct History {
    /// The revision of the owner's current template.
    pub update: ControllerRevision,
    /// Every revision the owner controls, oldest revision number first.
    pub revisions: Vec<ControllerRevision>,
    /// The collision count to write back to the owner's status.
    pub collision_count: i32,
}

/// The patch stored in a revision: the whole template, replacing the old one.
pub fn patch_data(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({ "spec": { "template": t } })
}

/// Upstream's `HashControllerRevision`: FNV-1a of the data plus the
/// collision count, safe-encoded.
pub fn revision_hash(data: &Value, collision_count: i32) -> String {
    let mut bytes = serde_json::to_vec(data).unwrap_or_default();
    if collision_count > 0 {
        bytes.extend_from_slice(collision_count.to_string().as_bytes());
    }
    wu::safe_encode(wu::fnv32a(&bytes))
}

/// The hash label of a revision.
pub fn hash_of(rev: &ControllerRevision) -> String {
    rev.labels().get(REVISION_HASH_LABEL).cloned().unwrap_or_default()
}

/// The highest revision number, 0 when there is none.
pub fn max_revision(revs: &[ControllerRevision]) -> i64 {
    revs.iter().map(|r| r.revision).max().unwrap_or(0)
}

/// The revision whose data equals `data`, preferring the newest.
pub fn find_equal<'a>(revs: &'a [ControllerRevision], data: &Value) -> Option<&'a ControllerRevision> {
    revs.iter()
        .filter(|r| r.data.as_ref().is_some_and(|d| &d.0 == data))
        .max_by_key(|r| r.revision)
}

/// Which revisions to delete so at most `limit` old ones remain: the oldest
/// first, never `keep` (the live revisions) nor those whose name or hash is
/// in `in_use`.
pub fn to_prune<'a>(
    revs: &'a [ControllerRevision],
    keep: &BTreeSet<String>,
    in_use: &BTreeSet<String>,
    limit: i32,
) -> Vec<&'a ControllerRevision> {
    let mut old: Vec<&ControllerRevision> = revs
        .iter()
        .filter(|r| {
            let name = r.name_any();
            !keep.contains(&name) && !in_use.contains(&name) && !in_use.contains(&hash_of(r))
        })
        .collect();
    old.sort_by_key(|r| r.revision);
    let surplus = old.len().saturating_sub(limit.max(0) as usize);
    old.truncate(surplus);
    old
}

/// Brings the revisions of `owner` up to date with `template`: adopts
/// matching orphans, makes the current template's revision the newest
/// (creating it when no equal one exists) and returns them all.
pub async fn sync<K>(
    client: &kube::Client,
    owner: &K,
    template: &PodTemplateSpec,
    matcher: &Matcher,
    collision_count: i32,
) -> Result<History, UtilError>
where
    K: Resource<DynamicType = ()>,
{
    let ns = owner.namespace().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
    let uid = owner.uid().unwrap_or_default();
    let oref = wu::controller_ref(owner);
    let mut revisions = Vec::new();
    for rev in api.list(&ListParams::default()).await?.items {
        match wu::claim(&rev.metadata, &uid, matcher) {
            Claim::Owned => revisions.push(rev),
            Claim::Adopt => {
                let rev_uid = rev.uid().unwrap_or_default();
                wu::adopt(&api, &rev.name_any(), &rev_uid, oref.clone()).await?;
                revisions.push(rev);
            }
            Claim::Release => wu::release(&api, &rev, &uid).await?,
            Claim::Ignore => {}
        }
    }
    revisions.sort_by_key(|r| r.revision);
    let data = patch_data(template);
    let next = max_revision(&revisions) + 1;

    if let Some(found) = find_equal(&revisions, &data).cloned() {
        let mut update = found;
        if update.revision != max_revision(&revisions) {
            let patch = json!({ "revision": next });
            update = api
                .patch(&update.name_any(), &PatchParams::default(), &Patch::Merge(patch))
                .await?;
            if let Some(r) = revisions.iter_mut().find(|r| r.name_any() == update.name_any()) {
                *r = update.clone();
            }
            revisions.sort_by_key(|r| r.revision);
        }
        return Ok(History {
            update,
            revisions,
            collision_count,
        });
    }

    let mut collisions = collision_count;
    loop {
        let hash = revision_hash(&data, collisions);
        let mut labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(REVISION_HASH_LABEL.to_string(), hash.clone());
        let rev = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", owner.name_any())),
                namespace: Some(ns.clone()),
                labels: Some(labels),
                owner_references: Some(vec![oref.clone()]),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(data.clone())),
            revision: next,
        };
        match api.create(&PostParams::default(), &rev).await {
            Ok(created) => {
                revisions.push(created.clone());
                return Ok(History {
                    update: created,
                    revisions,
                    collision_count: collisions,
                });
            }
            Err(kube::Error::Api(s)) if s.code == 409 && collisions - collision_count < MAX_COLLISIONS => {
                // Same name, other data (or someone else's): hash again.
                let existing = api.get(&format!("{}-{hash}", owner.name_any())).await?;
                if existing.data.as_ref().is_some_and(|d| d.0 == data)
                    && wu::controller_of(&existing.metadata).is_some_and(|r| r.uid == uid)
                {
                    revisions.push(existing.clone());
                    return Ok(History {
                        update: existing,
                        revisions,
                        collision_count: collisions,
                    });
                }
                collisions += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Deletes revisions beyond `limit` that are neither live nor in use.
pub async fn prune(
    client: &kube::Client,
    ns: &str,
    revs: &[ControllerRevision],
    keep: &BTreeSet<String>,
    in_use: &BTreeSet<String>,
    limit: i32,
) -> Result<(), UtilError> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), ns);
    for r in to_prune(revs, keep, in_use, limit) {
        match api.delete(&r.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    fn rev(name: &str, n: i64, image: &str) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(REVISION_HASH_LABEL.to_string(), format!("h{n}"))].into()),
                ..Default::default()
            },
            data: Some(RawExtension(patch_data(&template(image)))),
            revision: n,
        }
    }

    #[test]
    fn data_is_a_replacing_template_patch() {
        let d = patch_data(&template("nginx"));
        assert_eq!(d["spec"]["template"]["$patch"], "replace");
        assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx");
    }

    #[test]
    fn hash_changes_with_template_and_collisions() {
        let a = patch_data(&template("a"));
        let b = patch_data(&template("b"));
        assert_eq!(revision_hash(&a, 0), revision_hash(&a, 0));
        assert_ne!(revision_hash(&a, 0), revision_hash(&b, 0));
        assert_ne!(revision_hash(&a, 0), revision_hash(&a, 1));
    }

    #[test]
    fn equal_template_is_found_and_old_unused_revisions_pruned() {
        let revs = vec![
            rev("r1", 1, "a"),
            rev("r2", 2, "b"),
            rev("r3", 3, "c"),
            rev("r4", 4, "d"),
        ];
        assert_eq!(
            find_equal(&revs, &patch_data(&template("b"))).map(|r| r.revision),
            Some(2)
        );
        assert!(find_equal(&revs, &patch_data(&template("z"))).is_none());
        let keep: BTreeSet<String> = ["r4".to_string()].into();
        let in_use: BTreeSet<String> = ["h1".to_string()].into();
        let names: Vec<String> = to_prune(&revs, &keep, &in_use, 1)
            .iter()
            .map(|r| r.name_any())
            .collect();
        assert_eq!(names, ["r2"]);
    }
}
