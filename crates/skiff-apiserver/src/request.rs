//! Request parsing: the resource path (`/api/v1[/namespaces/{ns}]/{plural}[/{name}[/{sub}]]`,
//! `/apis/{group}/{version}/...`, legacy `/watch/` paths) and the query
//! parameters of every verb.
//!
//! Must not: look anything up in the store; it only turns a URL into data.

#![allow(clippy::result_large_err)] // ApiError is the API-facing error; handlers move it on unchanged.

use skiff_api::status::ApiError;

/// The parts of a resource URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePath {
    /// API group; empty for the core group.
    pub group: String,
    pub version: String,
    /// The namespace segment, if the URL has one.
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// True for the legacy `/watch/` form.
    pub legacy_watch: bool,
}

/// Parses a resource path. Returns `None` for paths that are not resource
/// paths (discovery documents like `/api/v1` or `/apis/apps`).
pub fn parse_path(path: &str) -> Option<ResourcePath> {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let (group, version, rest) = match segs.first().map(String::as_str) {
        Some("api") if segs.len() >= 3 => (String::new(), segs[1].clone(), &segs[2..]),
        Some("apis") if segs.len() >= 4 => (segs[1].clone(), segs[2].clone(), &segs[3..]),
        _ => return None,
    };
    let mut out = ResourcePath {
        group,
        version,
        ..Default::default()
    };
    let mut rest = rest;
    if rest.first().map(String::as_str) == Some("watch") {
        out.legacy_watch = true;
        rest = &rest[1..];
    }
    if rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    if rest.len() >= 3 && rest[0] == "namespaces" && !is_namespace_subresource(rest) {
        out.namespace = Some(rest[1].clone());
        rest = &rest[2..];
    }
    match rest {
        [plural] => out.plural = plural.clone(),
        [plural, name] => {
            out.plural = plural.clone();
            out.name = Some(name.clone());
        }
        [plural, name, sub] => {
            out.plural = plural.clone();
            out.name = Some(name.clone());
            out.subresource = Some(sub.clone());
        }
        _ => return None,
    }
    Some(out)
}

/// `namespaces/{name}/status` and `namespaces/{name}/finalize` are subresources
/// of a Namespace, not resources inside it.
fn is_namespace_subresource(rest: &[String]) -> bool {
    rest.len() == 3 && (rest[2] == "status" || rest[2] == "finalize")
}

/// `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    Warn,
    #[default]
    Strict,
}

/// `resourceVersionMatch` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RvMatch {
    NotOlderThan,
    Exact,
}

/// Every query parameter skiff understands (unknown ones are ignored, as upstream).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub label_selector: String,
    pub field_selector: String,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<RvMatch>,
    pub watch: bool,
    pub allow_watch_bookmarks: bool,
    pub send_initial_events: Option<bool>,
    pub timeout_seconds: Option<u64>,
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub field_manager: Option<String>,
    pub force: bool,
    pub propagation_policy: Option<String>,
    pub grace_period_seconds: Option<i64>,
    pub include_object: Option<String>,
    /// `container`, `follow`, ... of node subresources are not parsed here.
    pub pretty: bool,
}

fn parse_bool(v: &str) -> bool {
    matches!(v, "true" | "1" | "True" | "TRUE")
}

fn parse_num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ApiError> {
    v.parse::<T>()
        .map_err(|_| ApiError::bad_request(format!("invalid value for {name}: {v:?}")))
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        let mut q = Query::default();
        let Some(raw) = raw else { return Ok(q) };
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            let v = v.as_ref();
            match k.as_ref() {
                "labelSelector" => q.label_selector = v.to_string(),
                "fieldSelector" => q.field_selector = v.to_string(),
                "limit" => {
                    let n: i64 = parse_num("limit", v)?;
                    q.limit = (n > 0).then_some(n as usize);
                }
                "continue" if !v.is_empty() => q.continue_token = Some(v.to_string()),
                "resourceVersion" if !v.is_empty() => q.resource_version = Some(v.to_string()),
                "resourceVersionMatch" => {
                    q.resource_version_match = match v {
                        "" => None,
                        "NotOlderThan" => Some(RvMatch::NotOlderThan),
                        "Exact" => Some(RvMatch::Exact),
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                            )));
                        }
                    }
                }
                "watch" => q.watch = parse_bool(v),
                "allowWatchBookmarks" => q.allow_watch_bookmarks = parse_bool(v),
                "sendInitialEvents" => q.send_initial_events = Some(parse_bool(v)),
                "timeoutSeconds" => q.timeout_seconds = Some(parse_num("timeoutSeconds", v)?),
                "dryRun" => {
                    if v != "All" && !v.is_empty() {
                        return Err(ApiError::bad_request(format!(
                            "dryRun: Unsupported value: \"{v}\": supported values: \"All\""
                        )));
                    }
                    q.dry_run = v == "All";
                }
                "fieldValidation" => {
                    q.field_validation = match v {
                        "Ignore" => FieldValidation::Ignore,
                        "Warn" => FieldValidation::Warn,
                        "Strict" | "" => FieldValidation::Strict,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
                            )));
                        }
                    }
                }
                "fieldManager" if !v.is_empty() => q.field_manager = Some(v.to_string()),
                "force" => q.force = parse_bool(v),
                "propagationPolicy" if !v.is_empty() => q.propagation_policy = Some(v.to_string()),
                "gracePeriodSeconds" => q.grace_period_seconds = Some(parse_num("gracePeriodSeconds", v)?),
                "includeObject" => q.include_object = Some(v.to_string()),
                "pretty" => q.pretty = parse_bool(v),
                _ => {}
            }
        }
        Ok(q)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_core_and_group_paths() {
        let p = parse_path("/api/v1/namespaces/default/pods/web/status").unwrap();
        assert_eq!(p.group, "");
        assert_eq!(p.namespace.as_deref(), Some("default"));
        assert_eq!((p.plural.as_str(), p.name.as_deref()), ("pods", Some("web")));
        assert_eq!(p.subresource.as_deref(), Some("status"));
        let p = parse_path("/apis/apps/v1/deployments").unwrap();
        assert_eq!(
            (p.group.as_str(), p.version.as_str(), p.plural.as_str()),
            ("apps", "v1", "deployments")
        );
        assert!(p.namespace.is_none());
    }

    #[test]
    fn namespaces_themselves_and_their_subresources() {
        let p = parse_path("/api/v1/namespaces/kube-system").unwrap();
        assert_eq!(
            (p.plural.as_str(), p.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        let p = parse_path("/api/v1/namespaces/x/finalize").unwrap();
        assert_eq!(
            (p.plural.as_str(), p.subresource.as_deref()),
            ("namespaces", Some("finalize"))
        );
        let p = parse_path("/api/v1/namespaces/x/pods").unwrap();
        assert_eq!((p.plural.as_str(), p.namespace.as_deref()), ("pods", Some("x")));
    }

    #[test]
    fn legacy_watch_and_discovery_paths() {
        let p = parse_path("/api/v1/watch/namespaces/d/pods").unwrap();
        assert!(p.legacy_watch);
        assert_eq!(p.namespace.as_deref(), Some("d"));
        assert!(parse_path("/api/v1").is_none());
        assert!(parse_path("/apis/apps/v1").is_none());
        assert!(parse_path("/api/v1/a/b/c/d").is_none());
    }

    #[test]
    fn query_parameters() {
        let q = Query::parse(Some("labelSelector=app%3Dweb&limit=5&watch=1&dryRun=All")).unwrap();
        assert_eq!(q.label_selector, "app=web");
        assert_eq!(q.limit, Some(5));
        assert!(q.watch && q.dry_run);
        assert!(Query::parse(Some("limit=x")).is_err());
        assert!(Query::parse(Some("fieldValidation=Bogus")).is_err());
    }
}
