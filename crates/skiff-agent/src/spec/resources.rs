//! A container's requests and limits as cgroup settings, the kubelet's way:
//! CPU shares from the request, CFS quota from the limit, the memory limit,
//! and an OOM score adjustment from the pod's QoS class.
//!
//! Pure; the node's memory capacity is passed in.

use k8s_cri::v1::LinuxContainerResources;
use k8s_openapi::api::core::v1::{Container, Pod};
use skiff_api::validation::quantity::Quantity;

/// CFS period the kubelet uses (100 ms).
pub const CPU_PERIOD_US: i64 = 100_000;
const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262_144;
const SHARES_PER_CPU: i64 = 1024;
const MIN_QUOTA_US: i64 = 1000;
const GUARANTEED_OOM_SCORE_ADJ: i64 = -997;
const BEST_EFFORT_OOM_SCORE_ADJ: i64 = 1000;

/// A pod's quality-of-service class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosClass {
    /// Every container has equal requests and limits for CPU and memory.
    Guaranteed,
    /// Some request or limit, but not Guaranteed.
    Burstable,
    /// No CPU or memory request or limit anywhere.
    BestEffort,
}

/// `status.qosClass` when the API server set it, else computed from the
/// containers as upstream does.
pub fn qos_class(pod: &Pod) -> QosClass {
    match pod.status.as_ref().and_then(|s| s.qos_class.as_deref()) {
        Some("Guaranteed") => return QosClass::Guaranteed,
        Some("Burstable") => return QosClass::Burstable,
        Some("BestEffort") => return QosClass::BestEffort,
        _ => {}
    }
    let Some(spec) = &pod.spec else {
        return QosClass::BestEffort;
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        for r in ["cpu", "memory"] {
            let req = quantity(c, Kind::Requests, r);
            let lim = quantity(c, Kind::Limits, r);
            if req.is_some_and(|q| !q.is_zero()) || lim.is_some_and(|q| !q.is_zero()) {
                any = true;
            }
            match (req, lim) {
                (Some(q), Some(l)) if q == l => {}
                (None, Some(_)) => {}
                _ => guaranteed = false,
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => QosClass::BestEffort,
        (true, true) => QosClass::Guaranteed,
        (true, false) => QosClass::Burstable,
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Requests,
    Limits,
}

fn quantity(c: &Container, kind: Kind, name: &str) -> Option<Quantity> {
    let res = c.resources.as_ref()?;
    let map = match kind {
        Kind::Requests => res.requests.as_ref()?,
        Kind::Limits => res.limits.as_ref()?,
    };
    Quantity::parse(&map.get(name)?.0).ok()
}

fn milli(c: &Container, kind: Kind, name: &str) -> i64 {
    quantity(c, kind, name).map_or(0, |q| i64::try_from(q.milli()).unwrap_or(i64::MAX))
}

/// Bytes of a memory quantity (its thousandths rounded up, divided back).
fn bytes(c: &Container, kind: Kind) -> i64 {
    milli(c, kind, "memory").div_euclid(1000)
}

/// CPU shares for a number of millicores (the kubelet's MilliCPUToShares).
pub fn milli_cpu_to_shares(milli: i64) -> i64 {
    if milli <= 0 {
        return MIN_SHARES;
    }
    (milli * SHARES_PER_CPU / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// CFS quota in microseconds for a CPU limit in millicores.
pub fn milli_cpu_to_quota(milli: i64, period: i64) -> i64 {
    if milli <= 0 {
        return 0;
    }
    (milli * period / 1000).max(MIN_QUOTA_US)
}

/// The kubelet's OOM score adjustment for `container` of `pod` on a node
/// with `memory_capacity` bytes.
pub fn oom_score_adj(pod: &Pod, container: &Container, memory_capacity: i64) -> i64 {
    let critical = pod
        .spec
        .as_ref()
        .and_then(|s| s.priority)
        .is_some_and(|p| p >= 2_000_000_000);
    if critical {
        return GUARANTEED_OOM_SCORE_ADJ;
    }
    match qos_class(pod) {
        QosClass::Guaranteed => GUARANTEED_OOM_SCORE_ADJ,
        QosClass::BestEffort => BEST_EFFORT_OOM_SCORE_ADJ,
        QosClass::Burstable => {
            let request = bytes(container, Kind::Requests);
            let adj = if memory_capacity > 0 {
                1000 - (1000 * i128::from(request) / i128::from(memory_capacity)) as i64
            } else {
                1000
            };
            if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ {
                1000 + GUARANTEED_OOM_SCORE_ADJ
            } else if adj == BEST_EFFORT_OOM_SCORE_ADJ {
                adj - 1
            } else {
                adj
            }
        }
    }
}

/// The CRI resources of `container`.
pub fn linux_resources(pod: &Pod, container: &Container, memory_capacity: i64) -> LinuxContainerResources {
    let cpu_request = milli(container, Kind::Requests, "cpu");
    let cpu_limit = milli(container, Kind::Limits, "cpu");
    let cpu_shares = if cpu_request == 0 && cpu_limit != 0 {
        milli_cpu_to_shares(cpu_limit)
    } else {
        milli_cpu_to_shares(cpu_request)
    };
    let (cpu_period, cpu_quota) = if cpu_limit > 0 {
        (CPU_PERIOD_US, milli_cpu_to_quota(cpu_limit, CPU_PERIOD_US))
    } else {
        (0, 0)
    };
    LinuxContainerResources {
        cpu_period,
        cpu_quota,
        cpu_shares,
        memory_limit_in_bytes: bytes(container, Kind::Limits),
        oom_score_adj: oom_score_adj(pod, container, memory_capacity),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(resources: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": resources}]}
        }))
        .unwrap()
    }

    fn res(resources: serde_json::Value) -> LinuxContainerResources {
        let p = pod(resources);
        let c = p.spec.as_ref().unwrap().containers[0].clone();
        linux_resources(&p, &c, 8 << 30)
    }

    #[test]
    fn best_effort_gets_min_shares_no_limits_and_oom_1000() {
        let r = res(serde_json::json!({}));
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes),
            (2, 0, 0, 0)
        );
        assert_eq!(r.oom_score_adj, 1000);
    }

    #[test]
    fn guaranteed_limits_become_quota_and_memory_limit() {
        let r = res(serde_json::json!({
            "requests": {"cpu": "500m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"}
        }));
        assert_eq!(r.cpu_shares, 512);
        assert_eq!((r.cpu_quota, r.cpu_period), (50_000, 100_000));
        assert_eq!(r.memory_limit_in_bytes, 128 << 20);
        assert_eq!(r.oom_score_adj, -997);
    }

    #[test]
    fn burstable_oom_score_scales_with_memory_request() {
        let r = res(serde_json::json!({"requests": {"cpu": "1m", "memory": "2Gi"}}));
        assert_eq!(r.cpu_shares, 2);
        assert_eq!(r.oom_score_adj, 1000 - 250);
        let tiny = res(serde_json::json!({"requests": {"cpu": "100m"}}));
        assert_eq!(tiny.cpu_shares, 102);
        assert_eq!(tiny.oom_score_adj, 999);
        let huge = res(serde_json::json!({"requests": {"memory": "16Gi"}}));
        assert_eq!(huge.oom_score_adj, 3);
    }

    #[test]
    fn shares_and_quota_follow_kubelet_bounds() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(1_000_000), 262_144);
        assert_eq!(milli_cpu_to_quota(1, CPU_PERIOD_US), 1000);
        assert_eq!(milli_cpu_to_quota(2500, CPU_PERIOD_US), 250_000);
        let limit_only = res(serde_json::json!({"limits": {"cpu": "2"}}));
        assert_eq!(limit_only.cpu_shares, 2048);
    }
}
