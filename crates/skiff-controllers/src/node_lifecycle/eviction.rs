//! Taint-based eviction (upstream's NoExecute taint manager): a pod on a node
//! with NoExecute taints it does not tolerate is deleted at once; one that
//! tolerates them all for a bounded `tolerationSeconds` is deleted when the
//! shortest of those runs out (counted from the taint's timeAdded); one that
//! tolerates them forever stays.

use k8s_openapi::api::core::v1::{ObjectReference, Pod, Taint, Toleration};
use kube::api::{Api, DeleteParams, ListParams};

use crate::events::{EventType, Recorder};

/// Taint key of a node whose Ready condition is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Taint key of a node whose Ready condition is Unknown.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// True when `tol` tolerates `taint` (upstream's ToleratesTaint).
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = tol.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    let key = tol.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match tol.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty() && tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// When the pod must go, given the node's taints: `None` = never, else the
/// instant (possibly in the past = now).
pub fn eviction_time(
    tolerations: &[Toleration],
    taints: &[Taint],
    now: jiff::Timestamp,
) -> Option<jiff::Timestamp> {
    let mut due: Option<jiff::Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(now);
        }
        if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let secs = matching
            .iter()
            .filter_map(|t| t.toleration_seconds)
            .min()
            .unwrap_or(0)
            .max(0);
        let added = taint.time_added.as_ref().map_or(now, |t| t.0);
        let at = added + jiff::SignedDuration::from_secs(secs);
        due = Some(due.map_or(at, |d| d.min(at)));
    }
    due
}

/// Deletes pods whose time on a tainted node is up.
pub struct Evictor {
    pods: Api<Pod>,
    recorder: Recorder,
}

impl Evictor {
    /// An evictor acting through `client`.
    pub fn new(client: kube::Client) -> Self {
        Evictor {
            pods: Api::all(client.clone()),
            recorder: Recorder::new(client, "taint-eviction-controller"),
        }
    }

    /// Evicts the pods of `node` that do not (or no longer) tolerate `taints`.
    pub async fn evict_from(&self, node: &str, taints: &[Taint], now: jiff::Timestamp) {
        let lp = ListParams::default().fields(&format!("spec.nodeName={node}"));
        let pods = match self.pods.list(&lp).await {
            Ok(l) => l.items,
            Err(e) => {
                tracing::warn!(node, error = %e, "eviction: could not list pods");
                return;
            }
        };
        for pod in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
            let tolerations = pod
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or(&[]);
            let Some(at) = eviction_time(tolerations, taints, now) else {
                continue;
            };
            if at > now {
                continue;
            }
            let (Some(ns), Some(name)) = (pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref())
            else {
                continue;
            };
            let api: Api<Pod> = Api::namespaced(self.pods.clone().into_client(), ns);
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => {
                    let about = ObjectReference {
                        kind: Some("Pod".into()),
                        api_version: Some("v1".into()),
                        namespace: Some(ns.into()),
                        name: Some(name.into()),
                        uid: pod.metadata.uid.clone(),
                        ..ObjectReference::default()
                    };
                    let msg = format!("Marking for deletion Pod {ns}/{name}");
                    self.recorder
                        .record(&about, EventType::Normal, "TaintManagerEviction", &msg)
                        .await;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => tracing::warn!(pod = name, error = %e, "eviction: delete failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn taint(key: &str, added: jiff::Timestamp) -> Taint {
        Taint {
            key: key.into(),
            effect: "NoExecute".into(),
            time_added: Some(Time(added)),
            value: None,
        }
    }

    fn tol(key: &str, secs: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: secs,
            value: None,
        }
    }

    #[test]
    fn an_untolerated_taint_evicts_now() {
        let now = jiff::Timestamp::now();
        assert_eq!(eviction_time(&[], &[taint(UNREACHABLE, now)], now), Some(now));
    }

    #[test]
    fn toleration_seconds_count_from_the_taint() {
        let now = jiff::Timestamp::now();
        let added = now - jiff::SignedDuration::from_secs(1);
        let at = eviction_time(&[tol(UNREACHABLE, Some(2))], &[taint(UNREACHABLE, added)], now).unwrap();
        assert_eq!(at, added + jiff::SignedDuration::from_secs(2));
    }

    #[test]
    fn a_forever_toleration_keeps_the_pod() {
        let now = jiff::Timestamp::now();
        assert_eq!(
            eviction_time(&[tol(UNREACHABLE, None)], &[taint(UNREACHABLE, now)], now),
            None
        );
    }

    #[test]
    fn an_empty_key_exists_toleration_tolerates_everything() {
        let t = Toleration {
            operator: Some("Exists".into()),
            ..Toleration::default()
        };
        assert!(tolerates(&t, &taint(NOT_READY, jiff::Timestamp::now())));
    }
}
