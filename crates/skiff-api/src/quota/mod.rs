//! Resource quota arithmetic shared by the quota admission step of the API
//! server and the resource quota controller: which objects a quota counts,
//! what each uses ([`usage`]), summing and printing quantities ([`amount`]),
//! and the admission decision with upstream's messages.
//!
//! Must not: do I/O; callers list the namespace's objects and quotas.

pub mod amount;
pub mod usage;

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

pub use amount::{Amount, ResourceList};

/// One scope expression of a quota (`spec.scopes` entries are `Exists`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `Terminating`, `NotTerminating`, `BestEffort`, `NotBestEffort`, `PriorityClass`.
    pub name: String,
    /// `Exists`, `DoesNotExist`, `In`, `NotIn`.
    pub operator: String,
    /// Values of `In`/`NotIn`.
    pub values: Vec<String>,
}

impl Scope {
    fn matches(&self, pod: &Value) -> bool {
        if self.name == "PriorityClass" {
            let class = pod["spec"]["priorityClassName"]
                .as_str()
                .filter(|s| !s.is_empty());
            return match self.operator.as_str() {
                "Exists" => class.is_some(),
                "DoesNotExist" => class.is_none(),
                "In" => class.is_some_and(|c| self.values.iter().any(|v| v == c)),
                "NotIn" => class.is_none_or(|c| !self.values.iter().any(|v| v == c)),
                _ => false,
            };
        }
        let hit = usage::pod_matches_scope(&self.name, pod);
        match self.operator.as_str() {
            "DoesNotExist" => !hit,
            _ => hit,
        }
    }
}

/// A ResourceQuota as admission and the controller read it.
#[derive(Debug, Clone, Default)]
pub struct Quota {
    /// metadata.name.
    pub name: String,
    /// spec.hard, parsed.
    pub hard: ResourceList,
    /// spec.scopes and spec.scopeSelector, together.
    pub scopes: Vec<Scope>,
}

impl Quota {
    /// Reads a ResourceQuota object.
    pub fn from_json(q: &Value) -> Quota {
        let mut scopes: Vec<Scope> = q["spec"]["scopes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|s| Scope {
                name: s.to_string(),
                operator: "Exists".into(),
                values: Vec::new(),
            })
            .collect();
        for e in q["spec"]["scopeSelector"]["matchExpressions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            scopes.push(Scope {
                name: e["scopeName"].as_str().unwrap_or_default().to_string(),
                operator: e["operator"].as_str().unwrap_or_default().to_string(),
                values: e["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            });
        }
        Quota {
            name: q["metadata"]["name"].as_str().unwrap_or_default().to_string(),
            hard: amount::parse_list(q.pointer("/spec/hard")),
            scopes,
        }
    }

    /// The kinds (group, plural) whose objects this quota counts.
    pub fn kinds(&self) -> BTreeSet<(String, String)> {
        self.hard
            .keys()
            .filter_map(|r| usage::counted_kind(r))
            .filter(|(g, p)| self.scopes.is_empty() || (g.is_empty() && p == "pods"))
            .collect()
    }

    /// Whether the quota applies to an object of `group`/`plural`: it limits
    /// something such objects use, and the object is in its scopes (scoped
    /// quotas only ever cover pods).
    pub fn matches(&self, plural: &str, group: &str, obj: &Value) -> bool {
        let covers = self
            .hard
            .keys()
            .any(|r| usage::counted_kind(r).is_some_and(|(g, p)| g == group && p == plural));
        if !covers {
            return false;
        }
        if self.scopes.is_empty() {
            return true;
        }
        group.is_empty() && plural == "pods" && self.scopes.iter().all(|s| s.matches(obj))
    }

    /// What the objects (each with its kind) use of this quota at `now`:
    /// every hard resource, zero when unused.
    pub fn usage<'a>(
        &self,
        objects: impl IntoIterator<Item = (&'a str, &'a str, &'a Value)>,
        now: jiff::Timestamp,
    ) -> ResourceList {
        let mut used: ResourceList = self.hard.keys().map(|k| (k.clone(), Amount::ZERO)).collect();
        for (plural, group, obj) in objects {
            if !usage::object_counts(plural, group, obj, now) || !self.matches(plural, group, obj) {
                continue;
            }
            for (k, v) in usage::object_usage(plural, group, obj) {
                if let Some(u) = used.get_mut(&k) {
                    *u = u.plus(v);
                }
            }
        }
        used
    }
}

/// Why admission refuses an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// A container lacks a value the quota needs (`failed quota: ...`).
    Constraint { quota: String, message: String },
    /// The object would take usage over a hard limit.
    Exceeded {
        quota: String,
        requested: ResourceList,
        used: ResourceList,
        limited: ResourceList,
    },
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::Constraint { quota, message } => write!(f, "failed quota: {quota}: {message}"),
            Denial::Exceeded {
                quota,
                requested,
                used,
                limited,
            } => write!(
                f,
                "exceeded quota: {quota}, requested: {}, used: {}, limited: {}",
                amount::pretty(requested),
                amount::pretty(used),
                amount::pretty(limited)
            ),
        }
    }
}

/// Upstream's quota admission decision for creating `obj` of
/// `group`/`plural`, given each quota of the namespace (by name order)
/// with the usage of the objects that exist already.
pub fn admit(quotas: &[(Quota, ResourceList)], plural: &str, group: &str, obj: &Value) -> Result<(), Denial> {
    let matching: Vec<&(Quota, ResourceList)> = quotas
        .iter()
        .filter(|(q, _)| q.matches(plural, group, obj))
        .collect();
    if group.is_empty() && plural == "pods" {
        for (q, _) in &matching {
            if let Some(message) = usage::pod_constraints(&q.hard, obj) {
                return Err(Denial::Constraint {
                    quota: q.name.clone(),
                    message,
                });
            }
        }
    }
    let delta = usage::object_usage(plural, group, obj);
    for (q, used) in matching {
        let exceeded: Vec<&String> = delta
            .iter()
            .filter(|(k, v)| {
                q.hard.get(*k).is_some_and(|hard| {
                    let now = used.get(*k).copied().unwrap_or(Amount::ZERO);
                    now.plus(**v) > *hard
                })
            })
            .map(|(k, _)| k)
            .collect();
        if exceeded.is_empty() {
            continue;
        }
        let mask = |l: &ResourceList| -> ResourceList {
            exceeded
                .iter()
                .map(|k| ((*k).clone(), l.get(*k).copied().unwrap_or(Amount::ZERO)))
                .collect()
        };
        return Err(Denial::Exceeded {
            quota: q.name.clone(),
            requested: mask(&delta),
            used: mask(used),
            limited: mask(&q.hard),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quota(hard: Value) -> Quota {
        Quota::from_json(&json!({"metadata": {"name": "q1"}, "spec": {"hard": hard}}))
    }

    fn pod(name: &str, cpu: Option<&str>) -> Value {
        let resources = cpu.map_or(
            json!({}),
            |c| json!({"requests": {"cpu": c}, "limits": {"cpu": c}}),
        );
        json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "resources": resources}]}})
    }

    #[test]
    fn the_pod_over_the_count_is_refused_with_upstreams_message() {
        let q = quota(json!({"pods": "2"}));
        let existing = [pod("a", None), pod("b", None)];
        let used = q.usage(existing.iter().map(|p| ("pods", "", p)), jiff::Timestamp::now());
        let err = admit(&[(q, used)], "pods", "", &pod("x", None)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exceeded quota: q1, requested: pods=1, used: pods=2, limited: pods=2"
        );
    }

    #[test]
    fn cpu_quota_requires_a_value_and_sums_requests() {
        let q = quota(json!({"limits.cpu": "1", "pods": "10"}));
        let used = q.usage([("pods", "", &pod("a", Some("600m")))], jiff::Timestamp::now());
        assert_eq!(used["limits.cpu"].to_string(), "600m");
        assert_eq!(used["pods"].to_string(), "1");
        let quotas = [(q, used)];
        assert_eq!(
            admit(&quotas, "pods", "", &pod("x", None))
                .unwrap_err()
                .to_string(),
            "failed quota: q1: must specify limits.cpu for: c"
        );
        assert_eq!(
            admit(&quotas, "pods", "", &pod("x", Some("500m")))
                .unwrap_err()
                .to_string(),
            "exceeded quota: q1, requested: limits.cpu=500m, used: limits.cpu=600m, limited: limits.cpu=1"
        );
        assert!(admit(&quotas, "pods", "", &pod("x", Some("400m"))).is_ok());
    }

    #[test]
    fn scoped_quotas_count_only_matching_pods_and_no_other_kinds() {
        let q = Quota::from_json(&json!({"metadata": {"name": "be"},
            "spec": {"hard": {"pods": "1", "configmaps": "1"}, "scopes": ["BestEffort"]}}));
        let burst = pod("b", Some("100m"));
        let be = pod("e", None);
        let used = q.usage([("pods", "", &burst), ("pods", "", &be)], jiff::Timestamp::now());
        assert_eq!(used["pods"].to_string(), "1");
        assert!(!q.matches("configmaps", "", &json!({})));
        assert!(admit(&[(q.clone(), used.clone())], "pods", "", &burst).is_ok());
        assert!(admit(&[(q, used)], "pods", "", &be).is_err());
    }

    #[test]
    fn object_counts_cover_grouped_kinds() {
        let q = quota(json!({"count/deployments.apps": "1"}));
        assert!(
            q.kinds()
                .contains(&("apps".to_string(), "deployments".to_string()))
        );
        let d = json!({});
        let used = q.usage([("deployments", "apps", &d)], jiff::Timestamp::now());
        assert!(admit(&[(q, used)], "deployments", "apps", &d).is_err());
    }
}
