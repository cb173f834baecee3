//! Pod spec rules (`ValidatePodSpec` and what it calls): containers, ports,
//! env, resources, volumes and mounts, probes, restart/DNS policies,
//! tolerations — shared by Pods and every pod template.

use super::names;
use super::quantity::Quantity;
use crate::defaults::pod_volume_sources;
use crate::status::Cause;
use serde_json::{Value, json};
use std::collections::HashSet;

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Problems with a pod template (`spec.template`): its labels and spec.
pub(crate) fn template(template: &Value, path: &str, out: &mut Vec<Cause>) {
    let meta = template.get("metadata").unwrap_or(&Value::Null);
    super::meta::labels(meta.get("labels"), &format!("{path}.metadata.labels"), out);
    super::meta::annotations(
        meta.get("annotations"),
        &format!("{path}.metadata.annotations"),
        out,
    );
    spec(
        template.get("spec").unwrap_or(&Value::Null),
        &format!("{path}.spec"),
        out,
    );
}

/// Problems with a pod spec at `path` (`spec` or `spec.template.spec`).
pub(crate) fn spec(spec: &Value, path: &str, out: &mut Vec<Cause>) {
    let volumes = volumes(arr(spec, "volumes"), &format!("{path}.volumes"), out);
    let mut seen = HashSet::new();
    if arr(spec, "containers").is_empty() {
        out.push(Cause::required(format!("{path}.containers")));
    }
    for key in ["initContainers", "containers"] {
        for (i, c) in arr(spec, key).iter().enumerate() {
            container(
                c,
                &format!("{path}.{key}[{i}]"),
                key == "initContainers",
                &volumes,
                &mut seen,
                out,
            );
        }
    }
    let restart = s(spec, "restartPolicy");
    if !restart.is_empty() && !["Always", "OnFailure", "Never"].contains(&restart) {
        out.push(Cause::not_supported(
            format!("{path}.restartPolicy"),
            &json!(restart),
            &["Always", "OnFailure", "Never"],
        ));
    }
    let dns = s(spec, "dnsPolicy");
    let dns_values = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    if !dns.is_empty() && !dns_values.contains(&dns) {
        out.push(Cause::not_supported(
            format!("{path}.dnsPolicy"),
            &json!(dns),
            &dns_values,
        ));
    }
    if let Some(ads) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64)
        && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        out.push(Cause::invalid(
            format!("{path}.activeDeadlineSeconds"),
            &json!(ads),
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    super::meta::labels(spec.get("nodeSelector"), &format!("{path}.nodeSelector"), out);
    for key in ["hostname", "subdomain"] {
        let v = s(spec, key);
        if !v.is_empty() {
            for msg in names::dns1123_label(v) {
                out.push(Cause::invalid(format!("{path}.{key}"), &json!(v), msg));
            }
        }
    }
    for key in ["serviceAccountName", "nodeName"] {
        let v = s(spec, key);
        if !v.is_empty() {
            for msg in names::dns1123_subdomain(v) {
                out.push(Cause::invalid(format!("{path}.{key}"), &json!(v), msg));
            }
        }
    }
    for (i, t) in arr(spec, "tolerations").iter().enumerate() {
        toleration(t, &format!("{path}.tolerations[{i}]"), out);
    }
}

fn volumes(list: &[Value], path: &str, out: &mut Vec<Cause>) -> HashSet<String> {
    let mut names_seen = HashSet::new();
    for (i, v) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = s(v, "name");
        if name.is_empty() {
            out.push(Cause::required(format!("{p}.name")));
        } else {
            for msg in names::dns1123_label(name) {
                out.push(Cause::invalid(format!("{p}.name"), &json!(name), msg));
            }
            if !names_seen.insert(name.to_string()) {
                out.push(Cause::duplicate(format!("{p}.name"), &json!(name)));
            }
        }
        let sources: Vec<&str> = pod_volume_sources()
            .iter()
            .copied()
            .filter(|k| v.get(*k).is_some_and(|x| !x.is_null()))
            .collect();
        match sources.as_slice() {
            [] => out.push(Cause::new(
                "FieldValueRequired",
                p.clone(),
                "Required value: must specify a volume type",
            )),
            [_] => {}
            [_, extra, ..] => out.push(Cause::forbidden(
                format!("{p}.{extra}"),
                "may not specify more than 1 volume type",
            )),
        }
        let required = |source: &str, field: &str, out: &mut Vec<Cause>| {
            if let Some(src) = v.get(source).filter(|x| x.is_object())
                && s(src, field).is_empty()
            {
                out.push(Cause::required(format!("{p}.{source}.{field}")));
            }
        };
        required("configMap", "name", out);
        required("secret", "secretName", out);
        required("persistentVolumeClaim", "claimName", out);
        required("hostPath", "path", out);
    }
    names_seen
}

fn container(
    c: &Value,
    path: &str,
    init: bool,
    volumes: &HashSet<String>,
    seen: &mut HashSet<String>,
    out: &mut Vec<Cause>,
) {
    let name = s(c, "name");
    if name.is_empty() {
        out.push(Cause::required(format!("{path}.name")));
    } else {
        for msg in names::dns1123_label(name) {
            out.push(Cause::invalid(format!("{path}.name"), &json!(name), msg));
        }
        if !seen.insert(name.to_string()) {
            out.push(Cause::duplicate(format!("{path}.name"), &json!(name)));
        }
    }
    if s(c, "image").trim().is_empty() {
        out.push(Cause::required(format!("{path}.image")));
    }
    let pull = s(c, "imagePullPolicy");
    let pull_values = ["Always", "IfNotPresent", "Never"];
    if !pull.is_empty() && !pull_values.contains(&pull) {
        out.push(Cause::not_supported(
            format!("{path}.imagePullPolicy"),
            &json!(pull),
            &pull_values,
        ));
    }
    ports(arr(c, "ports"), &format!("{path}.ports"), out);
    env(arr(c, "env"), &format!("{path}.env"), out);
    resources(
        c.get("resources").unwrap_or(&Value::Null),
        &format!("{path}.resources"),
        out,
    );
    let mut mount_paths = HashSet::new();
    for (i, m) in arr(c, "volumeMounts").iter().enumerate() {
        let p = format!("{path}.volumeMounts[{i}]");
        let vol = s(m, "name");
        if vol.is_empty() {
            out.push(Cause::required(format!("{p}.name")));
        } else if !volumes.contains(vol) {
            out.push(Cause::new(
                "FieldValueNotFound",
                format!("{p}.name"),
                format!("Not found: {}", json!(vol)),
            ));
        }
        let mount_path = s(m, "mountPath");
        if mount_path.is_empty() {
            out.push(Cause::required(format!("{p}.mountPath")));
        } else if !mount_paths.insert(mount_path.to_string()) {
            out.push(Cause::invalid(
                format!("{p}.mountPath"),
                &json!(mount_path),
                "must be unique",
            ));
        }
    }
    let restartable_init = init && s(c, "restartPolicy") == "Always";
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get(key).filter(|p| p.is_object()) {
            if init && !restartable_init {
                out.push(Cause::forbidden(
                    format!("{path}.{key}"),
                    "may not be set for init containers without restartPolicy=Always",
                ));
                continue;
            }
            probe(p, &format!("{path}.{key}"), key != "readinessProbe", out);
        }
    }
}

fn ports(list: &[Value], path: &str, out: &mut Vec<Cause>) {
    let mut names_seen = HashSet::new();
    for (i, p) in list.iter().enumerate() {
        let pp = format!("{path}[{i}]");
        let name = s(p, "name");
        if !name.is_empty() {
            for msg in names::port_name(name) {
                out.push(Cause::invalid(format!("{pp}.name"), &json!(name), msg));
            }
            if !names_seen.insert(name.to_string()) {
                out.push(Cause::duplicate(format!("{pp}.name"), &json!(name)));
            }
        }
        match p.get("containerPort").and_then(Value::as_i64).unwrap_or(0) {
            0 => out.push(Cause::required(format!("{pp}.containerPort"))),
            n => port_number(n, &format!("{pp}.containerPort"), out),
        }
        if let Some(n) = p.get("hostPort").and_then(Value::as_i64).filter(|n| *n != 0) {
            port_number(n, &format!("{pp}.hostPort"), out);
        }
        protocol(s(p, "protocol"), &format!("{pp}.protocol"), out);
    }
}

/// `must be between 1 and 65535, inclusive` for a port number out of range.
pub(crate) fn port_number(n: i64, path: &str, out: &mut Vec<Cause>) {
    if !(1..=65535).contains(&n) {
        out.push(Cause::invalid(
            path,
            &json!(n),
            "must be between 1 and 65535, inclusive",
        ));
    }
}

/// A port protocol: required, and one of SCTP, TCP, UDP.
pub(crate) fn protocol(proto: &str, path: &str, out: &mut Vec<Cause>) {
    if proto.is_empty() {
        out.push(Cause::required(path));
    } else if !["SCTP", "TCP", "UDP"].contains(&proto) {
        out.push(Cause::not_supported(path, &json!(proto), &["SCTP", "TCP", "UDP"]));
    }
}

fn env(list: &[Value], path: &str, out: &mut Vec<Cause>) {
    for (i, e) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = s(e, "name");
        if name.is_empty() {
            out.push(Cause::required(format!("{p}.name")));
        } else {
            for msg in names::env_var_name(name) {
                out.push(Cause::invalid(format!("{p}.name"), &json!(name), msg));
            }
        }
        if e.get("valueFrom").is_some_and(Value::is_object) && !s(e, "value").is_empty() {
            out.push(Cause::invalid(
                format!("{p}.valueFrom"),
                &json!(""),
                "may not be specified when `value` is not empty",
            ));
        }
    }
}

fn resources(r: &Value, path: &str, out: &mut Vec<Cause>) {
    let parse_all = |key: &str, out: &mut Vec<Cause>| {
        let mut parsed = Vec::new();
        for (name, q) in r.get(key).and_then(Value::as_object).into_iter().flatten() {
            let text = q.as_str().map(str::to_string).unwrap_or_else(|| q.to_string());
            match Quantity::parse(&text) {
                Ok(v) if v.is_negative() => out.push(Cause::invalid(
                    format!("{path}.{key}[{name}]"),
                    &json!(text),
                    "must be greater than or equal to 0",
                )),
                Ok(v) => parsed.push((name.clone(), text, v)),
                Err(e) => out.push(Cause::invalid(
                    format!("{path}.{key}[{name}]"),
                    &json!(text),
                    e.to_string(),
                )),
            }
        }
        parsed
    };
    let limits = parse_all("limits", out);
    for (name, text, q) in parse_all("requests", out) {
        if let Some((_, lim_text, lim)) = limits.iter().find(|(n, _, _)| *n == name)
            && q > *lim
        {
            out.push(Cause::invalid(
                format!("{path}.requests"),
                &json!(text),
                format!("must be less than or equal to {name} limit of {lim_text}"),
            ));
        }
    }
}

fn probe(p: &Value, path: &str, success_must_be_one: bool, out: &mut Vec<Cause>) {
    let handlers: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc"]
        .into_iter()
        .filter(|k| p.get(*k).is_some_and(Value::is_object))
        .collect();
    match handlers.as_slice() {
        [] => out.push(Cause::new(
            "FieldValueRequired",
            path,
            "Required value: must specify a handler type",
        )),
        [_] => {}
        [_, extra, ..] => out.push(Cause::forbidden(
            format!("{path}.{extra}"),
            "may not specify more than 1 handler type",
        )),
    }
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        if let Some(n) = p.get(key).and_then(Value::as_i64).filter(|n| *n < 0) {
            out.push(Cause::invalid(
                format!("{path}.{key}"),
                &json!(n),
                "must be greater than or equal to 0",
            ));
        }
    }
    if let Some(n) = p.get("successThreshold").and_then(Value::as_i64)
        && success_must_be_one
        && n != 1
    {
        out.push(Cause::invalid(
            format!("{path}.successThreshold"),
            &json!(n),
            "must be 1",
        ));
    }
    for handler in ["httpGet", "tcpSocket"] {
        if let Some(port) = p.get(handler).and_then(|h| h.get("port")) {
            let pp = format!("{path}.{handler}.port");
            match port {
                Value::Number(n) => port_number(n.as_i64().unwrap_or(0), &pp, out),
                Value::String(name) => {
                    for msg in names::port_name(name) {
                        out.push(Cause::invalid(pp.clone(), port, msg));
                    }
                }
                _ => out.push(Cause::required(pp)),
            }
        }
    }
}

fn toleration(t: &Value, path: &str, out: &mut Vec<Cause>) {
    let key = s(t, "key");
    let op = s(t, "operator");
    if !key.is_empty() {
        for msg in names::qualified_name(key) {
            out.push(Cause::invalid(format!("{path}.key"), &json!(key), msg));
        }
    }
    match op {
        "" | "Equal" => {
            if key.is_empty() {
                out.push(Cause::invalid(
                    format!("{path}.operator"),
                    &json!(op),
                    "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                ));
            }
        }
        "Exists" => {
            if !s(t, "value").is_empty() {
                out.push(Cause::invalid(
                    format!("{path}.operator"),
                    &json!(t.get("value")),
                    "value must be empty when `operator` is 'Exists'",
                ));
            }
        }
        other => out.push(Cause::not_supported(
            format!("{path}.operator"),
            &json!(other),
            &["Equal", "Exists"],
        )),
    }
    let effect = s(t, "effect");
    let effects = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
    if !effect.is_empty() && !effects.contains(&effect) {
        out.push(Cause::not_supported(
            format!("{path}.effect"),
            &json!(effect),
            &effects,
        ));
    }
    if t.get("tolerationSeconds").is_some_and(|v| !v.is_null()) && effect != "NoExecute" {
        out.push(Cause::invalid(
            format!("{path}.effect"),
            &json!(effect),
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        ));
    }
}
