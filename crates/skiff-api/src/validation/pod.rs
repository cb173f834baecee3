//! Pod spec rules (`ValidatePodSpec`): container list and name uniqueness,
//! volumes, restart/DNS policies, scheduling fields and tolerations — shared
//! by Pods and every pod template. Per-container rules live in [`super::container`].

use super::names;
use super::{arr, s};
use crate::defaults::pod_volume_sources;
use crate::status::Cause;
use serde_json::{Value, json};
use std::collections::HashSet;

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
            super::container::container(
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
