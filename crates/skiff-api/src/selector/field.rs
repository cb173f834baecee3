//! Field selectors (`fieldSelector=metadata.name=x,spec.nodeName!=`): the
//! parser of upstream's `fields.ParseSelector` and the per-kind field labels
//! upstream's registries make selectable, with their values taken from an
//! object.

use crate::registry::ResourceDef;
use crate::status::ApiError;
use serde_json::Value;

/// A field selector term's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOp {
    /// `=` or `==`
    Equals,
    /// `!=`
    NotEquals,
}

/// One `field op value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub op: FieldOp,
    pub value: String,
}

const COMMON: &[&str] = &["metadata.name", "metadata.namespace"];
const POD: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];
const EVENT: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// The field labels upstream supports for a resource, beyond `metadata.name`
/// and `metadata.namespace`.
pub fn kind_fields(def: &ResourceDef) -> &'static [&'static str] {
    match (def.group, def.kind) {
        ("", "Pod") => POD,
        ("", "Node") => &["spec.unschedulable"],
        ("", "Event") | ("events.k8s.io", "Event") => EVENT,
        ("", "Secret") => &["type"],
        ("", "Namespace") => &["status.phase"],
        ("", "Service") => &["spec.clusterIP", "spec.type"],
        ("", "ReplicationController") | ("apps", "ReplicaSet") => &["status.replicas"],
        ("batch", "Job") => &["status.successful"],
        _ => &[],
    }
}

/// Whether `field` is a selectable field label of `def`.
pub fn is_supported(def: &ResourceDef, field: &str) -> bool {
    COMMON.contains(&field) || kind_fields(def).contains(&field)
}

/// Splits on `sep` where it is not escaped by a backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Finds the first unescaped operator in a term: (field, op, raw value).
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    let b = term.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        for (lit, op) in [
            ("!=", FieldOp::NotEquals),
            ("==", FieldOp::Equals),
            ("=", FieldOp::Equals),
        ] {
            if term[i..].starts_with(lit) {
                return Some((&term[..i], op, &term[i + lit.len()..]));
            }
        }
        i += 1;
    }
    None
}

/// Reverses the escaping of `\\`, `\,` and `\=` in a value.
fn unescape(v: &str) -> Result<String, String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => return Err(format!("invalid field selector: invalid escape sequence: \\{e}")),
                None => return Err("invalid field selector: invalid escape sequence: \\".to_string()),
            },
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {c}"
                ));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Parses a field selector and checks every field label against `def`.
pub fn parse(s: &str, def: &ResourceDef) -> Result<Vec<FieldRequirement>, ApiError> {
    let mut reqs = Vec::new();
    if s.trim().is_empty() {
        return Ok(reqs);
    }
    for term in split_unescaped(s, ',') {
        if term.is_empty() {
            continue;
        }
        let Some((field, op, raw)) = split_term(term) else {
            return Err(ApiError::bad_request(format!(
                "invalid selector: '{s}'; can't understand '{term}'"
            )));
        };
        let value = unescape(raw).map_err(ApiError::bad_request)?;
        let field = field.trim();
        if !is_supported(def, field) {
            return Err(ApiError::bad_request(format!(
                "field label not supported: {field}"
            )));
        }
        reqs.push(FieldRequirement {
            field: field.to_string(),
            op,
            value,
        });
    }
    Ok(reqs)
}

fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(obj, |cur, seg| cur.get(seg))
}

fn scalar(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The values a field label has on an object (one value for scalar fields;
/// every IP for `status.podIPs`). Absent fields read as upstream's defaults.
pub fn field_values(def: &ResourceDef, obj: &Value, field: &str) -> Vec<String> {
    let events_v1 = def.group == "events.k8s.io";
    let path = match field {
        "status.podIPs" => {
            let ips = lookup(obj, "status.podIPs").and_then(Value::as_array);
            let all: Vec<String> = ips.into_iter().flatten().map(|ip| scalar(ip.get("ip"))).collect();
            return if all.is_empty() { vec![String::new()] } else { all };
        }
        "spec.hostNetwork" | "spec.unschedulable" => {
            let v = lookup(obj, field).and_then(Value::as_bool).unwrap_or(false);
            return vec![v.to_string()];
        }
        "status.replicas" | "status.successful" => {
            let path = if field == "status.replicas" {
                field
            } else {
                "status.succeeded"
            };
            let v = lookup(obj, path).and_then(Value::as_i64).unwrap_or(0);
            return vec![v.to_string()];
        }
        "source" if events_v1 => "deprecatedSource.component",
        "source" => "source.component",
        "reportingComponent" if events_v1 => "reportingController",
        f if events_v1 && f.starts_with("involvedObject.") => {
            return vec![scalar(lookup(
                obj,
                &f.replacen("involvedObject.", "regarding.", 1),
            ))];
        }
        f => f,
    };
    vec![scalar(lookup(obj, path))]
}

impl FieldRequirement {
    /// Whether an object of `def` satisfies this term.
    pub fn matches(&self, def: &ResourceDef, obj: &Value) -> bool {
        let values = field_values(def, obj, &self.field);
        let hit = values.contains(&self.value);
        match self.op {
            FieldOp::Equals => hit,
            FieldOp::NotEquals => !hit,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    fn def(plural: &str) -> ResourceDef {
        let reg = Registry::builtin();
        let (g, v) = if plural == "jobs" {
            ("batch", "v1")
        } else {
            ("", "v1")
        };
        reg.find(g, v, plural).cloned().expect("registered")
    }

    #[test]
    fn rejects_unsupported_labels_with_upstream_message() {
        let err = parse("spec.foo=bar", &def("pods")).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(err.message, "field label not supported: spec.foo");
        assert!(parse("spec.nodeName=n1", &def("configmaps")).is_err());
        assert!(parse("type=Opaque", &def("secrets")).is_ok());
        let err = parse("metadata.name", &def("pods")).unwrap_err();
        assert_eq!(
            err.message,
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
    }

    #[test]
    fn matches_pod_fields() {
        let pods = def("pods");
        let pod = json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Running", "podIPs": [{"ip": "10.42.0.5"}]}});
        let m = |s: &str| parse(s, &pods).map(|r| r.iter().all(|r| r.matches(&pods, &pod)));
        assert_eq!(m("spec.nodeName=n1,status.phase==Running"), Ok(true));
        assert_eq!(m("spec.nodeName!=n1"), Ok(false));
        assert_eq!(m("spec.nodeName="), Ok(false));
        assert_eq!(m("status.podIPs=10.42.0.5,spec.hostNetwork=false"), Ok(true));
        assert_eq!(m("status.nominatedNodeName="), Ok(true));
        let unscheduled = json!({"metadata": {"name": "x"}, "spec": {}});
        assert!(
            parse("spec.nodeName=", &pods)
                .unwrap()
                .iter()
                .all(|r| r.matches(&pods, &unscheduled))
        );
    }

    #[test]
    fn matches_service_namespace_and_secret_fields() {
        let svcs = def("services");
        let headless = json!({"spec": {"clusterIP": "None", "type": "ClusterIP"}});
        let reqs = parse("spec.clusterIP!=None", &svcs).unwrap();
        assert!(!reqs[0].matches(&svcs, &headless));
        assert!(parse("spec.type=ClusterIP", &svcs).unwrap()[0].matches(&svcs, &headless));
        let ns = def("namespaces");
        let terminating = json!({"metadata": {"name": "x"}, "status": {"phase": "Terminating"}});
        assert!(parse("status.phase=Terminating", &ns).unwrap()[0].matches(&ns, &terminating));
        let secrets = def("secrets");
        let sa_token = json!({"type": "kubernetes.io/service-account-token"});
        assert!(
            parse("type=kubernetes.io/service-account-token", &secrets).unwrap()[0]
                .matches(&secrets, &sa_token)
        );
        assert!(parse("status.phase=Active", &secrets).is_err());
    }

    #[test]
    fn matches_event_and_job_fields_and_escapes() {
        let events = def("events");
        let ev =
            json!({"involvedObject": {"kind": "Pod", "name": "a,b"}, "source": {"component": "kubelet"}});
        let reqs = parse(
            "involvedObject.kind=Pod,involvedObject.name=a\\,b,source=kubelet",
            &events,
        )
        .unwrap();
        assert!(reqs.iter().all(|r| r.matches(&events, &ev)));
        let jobs = def("jobs");
        let job = json!({"status": {"succeeded": 1}});
        assert!(parse("status.successful=1", &jobs).unwrap()[0].matches(&jobs, &job));
        assert!(parse("metadata.name=a\\q", &jobs).is_err());
    }
}
