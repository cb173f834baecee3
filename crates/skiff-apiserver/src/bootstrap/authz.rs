//! What bootstrap-token and anonymous users may do — upstream's
//! `system:node-bootstrapper` and `system:discovery` roles and kubeadm's
//! anonymous binding to `kube-public/cluster-info`; skiff has no RBAC yet,
//! so these are the only users it restricts:
//!
//! - `system:bootstrappers`: create, get, list and watch
//!   CertificateSigningRequests, get cluster-info, and read discovery
//!   (non-resource GETs);
//! - `system:anonymous`: get cluster-info (public health paths are let
//!   through by authentication already).
//!
//! Anything else is a 403 `Forbidden` Status worded as upstream's RBAC denial.
//!
//! Must not: restrict any other user.

#![allow(clippy::result_large_err)] // ApiError is the API-facing error.

use http::Method;
use skiff_api::status::ApiError;

use super::{CLUSTER_INFO_NAME, CLUSTER_INFO_NAMESPACE, token};
use crate::authn::{ANONYMOUS_USER, UserInfo};
use crate::request::{ResourcePath, parse_path};

/// The Kubernetes verb of a request on a resource path.
pub fn verb(method: &Method, path: &ResourcePath, query: Option<&str>) -> &'static str {
    let watch = path.legacy_watch
        || query.is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    match (method, path.name.is_some()) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET | &Method::HEAD, true) => "get",
        (&Method::GET | &Method::HEAD, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    }
}

fn is_cluster_info(path: &ResourcePath) -> bool {
    path.group.is_empty()
        && path.plural == "configmaps"
        && path.namespace.as_deref() == Some(CLUSTER_INFO_NAMESPACE)
        && path.name.as_deref() == Some(CLUSTER_INFO_NAME)
        && path.subresource.is_none()
}

fn is_csr(path: &ResourcePath) -> bool {
    path.group == "certificates.k8s.io" && path.plural == "certificatesigningrequests"
}

/// Decides whether `user` may send this request; `Err` is the 403 to send.
pub fn authorize(user: &UserInfo, method: &Method, uri: &http::Uri) -> Result<(), ApiError> {
    let anonymous = user.name == ANONYMOUS_USER;
    let bootstrapper = user.in_group(token::GROUP);
    if !anonymous && !bootstrapper {
        return Ok(());
    }
    let Some(path) = parse_path(uri.path()) else {
        // Discovery, OpenAPI and version documents (system:discovery).
        let public = crate::authn::PUBLIC_PATHS.contains(&uri.path());
        if (bootstrapper || public) && (method == Method::GET || method == Method::HEAD) {
            return Ok(());
        }
        return Err(ApiError::forbidden(format!(
            "forbidden: User \"{}\" cannot {} path \"{}\"",
            user.name,
            method.as_str().to_ascii_lowercase(),
            uri.path()
        )));
    };
    let verb = verb(method, &path, uri.query());
    let allowed = if is_cluster_info(&path) {
        verb == "get"
    } else {
        bootstrapper
            && is_csr(&path)
            && path.subresource.is_none()
            && matches!(verb, "create" | "get" | "list" | "watch")
    };
    if allowed {
        Ok(())
    } else {
        Err(denial(user, verb, &path))
    }
}

/// Upstream's RBAC denial: `secrets is forbidden: User "x" cannot list
/// resource "secrets" in API group "" in the namespace "kube-system"`.
fn denial(user: &UserInfo, verb: &str, path: &ResourcePath) -> ApiError {
    let qualified = skiff_api::status::qualified_resource(&path.plural, &path.group);
    let subject = match &path.name {
        Some(name) => format!("{qualified} \"{name}\""),
        None => qualified,
    };
    let resource = match &path.subresource {
        Some(sub) => format!("{}/{sub}", path.plural),
        None => path.plural.clone(),
    };
    let scope = match &path.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let mut err = ApiError::forbidden(format!(
        "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
        user.name, path.group
    ));
    err.name = path.name.clone();
    err.group = Some(path.group.clone());
    err.kind = Some(path.plural.clone());
    err
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bootstrap_user() -> UserInfo {
        UserInfo::authenticated("system:bootstrap:abcdef", ["system:bootstrappers".to_string()])
    }

    fn check(user: &UserInfo, method: Method, uri: &str) -> Result<(), ApiError> {
        authorize(user, &method, &uri.parse().unwrap())
    }

    #[test]
    fn bootstrap_users_may_only_request_certificates_and_read_cluster_info() {
        let u = bootstrap_user();
        let csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
        assert!(check(&u, Method::POST, csrs).is_ok());
        assert!(check(&u, Method::GET, &format!("{csrs}/csr-1")).is_ok());
        assert!(check(&u, Method::GET, &format!("{csrs}?watch=true&fieldSelector=x")).is_ok());
        assert!(check(&u, Method::GET, CLUSTER_INFO_PATH_FOR_TEST).is_ok());
        assert!(check(&u, Method::GET, "/apis").is_ok());
        let err = check(&u, Method::GET, "/api/v1/namespaces/kube-system/secrets").unwrap_err();
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            "secrets is forbidden: User \"system:bootstrap:abcdef\" cannot list resource \"secrets\" \
             in API group \"\" in the namespace \"kube-system\""
        );
        let err = check(&u, Method::PUT, &format!("{csrs}/csr-1/approval")).unwrap_err();
        assert!(
            err.message
                .contains("cannot update resource \"certificatesigningrequests/approval\"")
        );
        assert!(err.message.ends_with("at the cluster scope"), "{}", err.message);
        assert!(check(&u, Method::DELETE, &format!("{csrs}/csr-1")).is_err());
        assert!(check(&u, Method::POST, "/api/v1/nodes").is_err());
    }

    const CLUSTER_INFO_PATH_FOR_TEST: &str = super::super::CLUSTER_INFO_PATH;

    #[test]
    fn anonymous_users_may_only_get_cluster_info() {
        let anon = UserInfo::anonymous();
        assert!(check(&anon, Method::GET, CLUSTER_INFO_PATH_FOR_TEST).is_ok());
        assert!(check(&anon, Method::PUT, CLUSTER_INFO_PATH_FOR_TEST).is_err());
        assert!(check(&anon, Method::GET, "/api/v1/namespaces/kube-public/configmaps").is_err());
        assert!(check(&anon, Method::GET, "/healthz").is_ok());
    }

    #[test]
    fn other_users_are_not_restricted() {
        let admin = UserInfo::authenticated("system:admin", ["system:masters".to_string()]);
        assert!(check(&admin, Method::GET, "/api/v1/secrets").is_ok());
        let node = UserInfo::authenticated("system:node:n1", ["system:nodes".to_string()]);
        assert!(check(&node, Method::DELETE, "/api/v1/namespaces/a/pods/b").is_ok());
    }
}
