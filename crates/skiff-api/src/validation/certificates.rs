//! CertificateSigningRequest rules (upstream's
//! `pkg/apis/certificates/validation`): a PEM request, a qualified signer
//! name, known usages, an expiration of at least 10 minutes, and conditions
//! that make sense (Approved and Denied exclusive, no duplicates, never
//! removed); a certificate only on an approved request, and never changed.

use serde_json::{Value, json};

use crate::certificates::{self, KEY_USAGES};
use crate::status::Cause;

/// The shortest `spec.expirationSeconds` upstream accepts.
const MIN_EXPIRATION_SECONDS: i64 = 600;
const EXCLUSIVE: [&str; 2] = ["Approved", "Denied"];

/// Rules of any CSR (create and update).
pub(super) fn csr(obj: &Value, out: &mut Vec<Cause>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    match certificates::request_bytes(obj) {
        None => out.push(Cause::required("spec.request")),
        Some(bytes) => {
            if let Err(e) = certificates::parse_request(&bytes) {
                out.push(Cause::invalid(
                    "spec.request",
                    &json!("<request data>"),
                    e.to_string(),
                ));
            }
        }
    }
    signer_name(spec.get("signerName"), out);
    let usages = spec.get("usages").and_then(Value::as_array);
    match usages {
        None => out.push(Cause::new(
            "FieldValueRequired",
            "spec.usages",
            "Required value: usages must be provided",
        )),
        Some(list) if list.is_empty() => out.push(Cause::new(
            "FieldValueRequired",
            "spec.usages",
            "Required value: usages must be provided",
        )),
        Some(list) => {
            for (i, u) in list.iter().enumerate() {
                if !u.as_str().is_some_and(|u| KEY_USAGES.contains(&u)) {
                    out.push(Cause::not_supported(format!("spec.usages[{i}]"), u, &KEY_USAGES));
                }
            }
        }
    }
    if let Some(secs) = spec.get("expirationSeconds").and_then(Value::as_i64)
        && secs < MIN_EXPIRATION_SECONDS
    {
        out.push(Cause::invalid(
            "spec.expirationSeconds",
            &json!(secs),
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    conditions(obj, out);
    if certificates::is_issued(obj) && !certificates::has_condition(obj, "Approved") {
        out.push(Cause::forbidden(
            "status.certificate",
            "certificate may only be set on an approved request",
        ));
    }
}

fn signer_name(name: Option<&Value>, out: &mut Vec<Cause>) {
    let Some(name) = name.and_then(Value::as_str).filter(|s| !s.is_empty()) else {
        out.push(Cause::required("spec.signerName"));
        return;
    };
    let qualified = name
        .split_once('/')
        .is_some_and(|(domain, path)| domain.contains('.') && !path.is_empty() && !domain.is_empty());
    if !qualified {
        out.push(Cause::invalid(
            "spec.signerName",
            &json!(name),
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
    }
}

fn conditions(obj: &Value, out: &mut Vec<Cause>) {
    let list = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let ty = c["type"].as_str().unwrap_or_default();
        let path = format!("status.conditions[{i}]");
        if ty.is_empty() {
            out.push(Cause::required(format!("{path}.type")));
            continue;
        }
        if seen.contains(&ty) && ["Approved", "Denied", "Failed"].contains(&ty) {
            out.push(Cause::duplicate(format!("{path}.type"), &json!(ty)));
        }
        if EXCLUSIVE.contains(&ty) && seen.iter().any(|s| EXCLUSIVE.contains(s) && *s != ty) {
            out.push(Cause::invalid(
                format!("{path}.type"),
                &json!(ty),
                "Approved and Denied conditions are mutually exclusive",
            ));
        }
        if EXCLUSIVE.contains(&ty) && c["status"] != "True" {
            out.push(Cause::not_supported(
                format!("{path}.status"),
                &c["status"],
                &["True"],
            ));
        }
        seen.push(ty);
    }
}

/// Update rules: the spec is immutable, Approved/Denied conditions stay,
/// and an issued certificate is never changed.
pub(super) fn csr_update(new: &Value, old: &Value, out: &mut Vec<Cause>) {
    if new.get("spec") != old.get("spec") {
        out.push(Cause::invalid("spec", &json!("<spec>"), "field is immutable"));
    }
    for ty in EXCLUSIVE {
        if certificates::has_condition(old, ty) && !certificates::has_condition(new, ty) {
            out.push(Cause::forbidden(
                "status.conditions",
                format!("updates may not remove a condition of type \"{ty}\""),
            ));
        }
    }
    if certificates::is_issued(old)
        && new.pointer("/status/certificate") != old.pointer("/status/certificate")
    {
        out.push(Cause::forbidden(
            "status.certificate",
            "updates may not modify existing certificate content",
        ));
    }
}
