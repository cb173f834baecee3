//! Container rules (`validateContainers` and what it calls): name, image,
//! pull policy, ports, env, resources (requests <= limits), volume mounts
//! and probes.

use super::names;
use super::quantity::Quantity;
use super::{arr, s};
use crate::status::Cause;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Problems with one container at `path`; `seen` collects names across all containers.
pub(crate) fn container(
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
    if let Some(l) = c.get("lifecycle").filter(|l| l.is_object()) {
        lifecycle(l, &format!("{path}.lifecycle"), out);
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

/// Exactly one handler among `kinds`, and an exec handler's command.
fn handler(h: &Value, path: &str, kinds: &[&str], out: &mut Vec<Cause>) {
    let present: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| h.get(*k).is_some_and(Value::is_object))
        .collect();
    match present.as_slice() {
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
    if let Some(exec) = h.get("exec").filter(|e| e.is_object())
        && exec
            .get("command")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
    {
        out.push(Cause::required(format!("{path}.exec.command")));
    }
}

/// postStart/preStop hooks: one handler each.
fn lifecycle(l: &Value, path: &str, out: &mut Vec<Cause>) {
    for hook in ["postStart", "preStop"] {
        if let Some(h) = l.get(hook).filter(|h| !h.is_null()) {
            handler(
                h,
                &format!("{path}.{hook}"),
                &["exec", "httpGet", "tcpSocket", "sleep"],
                out,
            );
        }
    }
}

fn probe(p: &Value, path: &str, success_must_be_one: bool, out: &mut Vec<Cause>) {
    handler(p, path, &["exec", "httpGet", "tcpSocket", "grpc"], out);
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
