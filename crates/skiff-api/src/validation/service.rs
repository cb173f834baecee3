//! Service rules (`ValidateService`, `ValidateServiceUpdate`): types, ports,
//! cluster IPs, traffic policies, selector, and the immutable cluster IP.

use super::container::{port_number, protocol};
use super::names;
use super::s;
use crate::status::Cause;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::IpAddr;

const TYPES: [&str; 4] = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

/// Problems with a Service's spec.
pub(crate) fn validate(obj: &Value, out: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let ty = s(spec, "type");
    if !ty.is_empty() && !TYPES.contains(&ty) {
        out.push(Cause::not_supported("spec.type", &json!(ty), &TYPES));
    }
    let cluster_ip = s(spec, "clusterIP");
    let headless = cluster_ip == "None";
    if ty == "ExternalName" {
        let name = s(spec, "externalName");
        if name.is_empty() {
            out.push(Cause::required("spec.externalName"));
        } else {
            for msg in names::dns1123_subdomain(name.trim_end_matches('.')) {
                out.push(Cause::invalid("spec.externalName", &json!(name), msg));
            }
        }
    }
    let ports = spec
        .get("ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if ports.is_empty() && !headless && ty != "ExternalName" {
        out.push(Cause::required("spec.ports"));
    }
    let mut names_seen = HashSet::new();
    let mut port_proto = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        let name = s(p, "name");
        if ports.len() > 1 && name.is_empty() {
            out.push(Cause::required(format!("{path}.name")));
        } else if !name.is_empty() {
            for msg in names::dns1123_label(name) {
                out.push(Cause::invalid(format!("{path}.name"), &json!(name), msg));
            }
            if !names_seen.insert(name.to_string()) {
                out.push(Cause::duplicate(format!("{path}.name"), &json!(name)));
            }
        }
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        port_number(port, &format!("{path}.port"), out);
        let proto = s(p, "protocol");
        protocol(proto, &format!("{path}.protocol"), out);
        if !port_proto.insert((port, proto.to_string())) {
            out.push(Cause::duplicate(
                path.clone(),
                &json!({"port": port, "protocol": proto}),
            ));
        }
        match p.get("targetPort") {
            Some(Value::Number(n)) => {
                port_number(n.as_i64().unwrap_or(0), &format!("{path}.targetPort"), out)
            }
            Some(Value::String(n)) => {
                for msg in names::port_name(n) {
                    out.push(Cause::invalid(format!("{path}.targetPort"), &json!(n), msg));
                }
            }
            _ => {}
        }
        if let Some(np) = p.get("nodePort").and_then(Value::as_i64).filter(|n| *n != 0) {
            if ty == "ClusterIP" || ty == "ExternalName" || ty.is_empty() {
                out.push(Cause::forbidden(
                    format!("{path}.nodePort"),
                    format!(
                        "may not be used when `type` is '{}'",
                        if ty.is_empty() { "ClusterIP" } else { ty }
                    ),
                ));
            } else {
                port_number(np, &format!("{path}.nodePort"), out);
            }
        }
    }
    let affinity = s(spec, "sessionAffinity");
    if !affinity.is_empty() && !["ClientIP", "None"].contains(&affinity) {
        out.push(Cause::not_supported(
            "spec.sessionAffinity",
            &json!(affinity),
            &["ClientIP", "None"],
        ));
    }
    if !cluster_ip.is_empty() && !headless && cluster_ip.parse::<IpAddr>().is_err() {
        out.push(Cause::invalid(
            "spec.clusterIPs[0]",
            &json!(cluster_ip),
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    if ty == "ExternalName" && !cluster_ip.is_empty() {
        out.push(Cause::forbidden(
            "spec.clusterIPs",
            "may not be set for ExternalName services",
        ));
    }
    let etp = s(spec, "externalTrafficPolicy");
    if !etp.is_empty() {
        if ty != "NodePort" && ty != "LoadBalancer" {
            out.push(Cause::invalid(
                "spec.externalTrafficPolicy",
                &json!(etp),
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            ));
        } else if !["Cluster", "Local"].contains(&etp) {
            out.push(Cause::not_supported(
                "spec.externalTrafficPolicy",
                &json!(etp),
                &["Cluster", "Local"],
            ));
        }
    }
    let itp = s(spec, "internalTrafficPolicy");
    if !itp.is_empty() && !["Cluster", "Local"].contains(&itp) {
        out.push(Cause::not_supported(
            "spec.internalTrafficPolicy",
            &json!(itp),
            &["Cluster", "Local"],
        ));
    }
    let policy = s(spec, "ipFamilyPolicy");
    let policies = ["SingleStack", "PreferDualStack", "RequireDualStack"];
    if !policy.is_empty() && !policies.contains(&policy) {
        out.push(Cause::not_supported(
            "spec.ipFamilyPolicy",
            &json!(policy),
            &policies,
        ));
    }
    for (i, family) in spec
        .get("ipFamilies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let f = family.as_str().unwrap_or_default();
        if !["IPv4", "IPv6"].contains(&f) {
            out.push(Cause::not_supported(
                format!("spec.ipFamilies[{i}]"),
                family,
                &["IPv4", "IPv6"],
            ));
        }
    }
    super::meta::labels(spec.get("selector"), "spec.selector", out);
}

/// Problems with updating a Service: a set cluster IP may not change.
pub(crate) fn validate_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    let old_ty = old
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let new_ty = new
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if old_ty == "ExternalName" || new_ty == "ExternalName" {
        return;
    }
    let old_ips = old.pointer("/spec/clusterIPs").cloned().unwrap_or(Value::Null);
    let new_ips = new.pointer("/spec/clusterIPs").cloned().unwrap_or(Value::Null);
    let old_ip = old
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let new_ip = new
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !old_ip.is_empty() && !new_ip.is_empty() && old_ip != new_ip {
        let shown = if new_ips.is_array() {
            new_ips
        } else {
            json!([new_ip])
        };
        out.push(Cause::invalid(
            "spec.clusterIPs[0]",
            &shown,
            "may not change once set",
        ));
    } else if old_ips.is_array() && new_ips.is_array() && old_ips != new_ips && !old_ip.is_empty() {
        out.push(Cause::invalid(
            "spec.clusterIPs[0]",
            &new_ips,
            "may not change once set",
        ));
    }
}
