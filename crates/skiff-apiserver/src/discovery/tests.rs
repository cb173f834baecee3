//! Discovery documents as a client sees them through the router.

use super::*;
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

/// What kubectl 1.32 sends on `/api` and `/apis`.
const KUBECTL_ACCEPT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,\
application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

async fn fetch(path: &str, accept: Option<&str>) -> (StatusCode, HeaderMap, Value) {
    let app = router(Arc::new(Registry::builtin()));
    let mut req = Request::builder().uri(path);
    if let Some(a) = accept {
        req = req.header(header::ACCEPT, a);
    }
    let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, headers, body)
}

fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[tokio::test]
async fn aggregated_apis_echo_the_negotiated_type() {
    let (status, headers, body) = fetch("/apis", Some(KUBECTL_ACCEPT)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], AGGREGATED_CONTENT_TYPE);
    assert_eq!(body["kind"], "APIGroupDiscoveryList");
    let apps = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .unwrap();
    let deploy = find(&apps["versions"][0]["resources"], "resource", "deployments");
    assert_eq!(deploy["scope"], "Namespaced");
    assert_eq!(deploy["singularResource"], "deployment");
    assert_eq!(deploy["shortNames"], json!(["deploy"]));
    assert_eq!(deploy["categories"], json!(["all"]));
    let scale = find(&deploy["subresources"], "subresource", "scale");
    assert_eq!(
        scale["responseKind"],
        json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
    );
    assert_eq!(scale["verbs"], json!(["get", "patch", "update"]));
}

#[tokio::test]
async fn aggregated_core_lists_pod_subresources() {
    let (_, headers, body) = fetch("/api", Some(KUBECTL_ACCEPT)).await;
    assert_eq!(headers[header::CONTENT_TYPE], AGGREGATED_CONTENT_TYPE);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["versions"][0]["version"], "v1");
    let pods = find(&items[0]["versions"][0]["resources"], "resource", "pods");
    let subs = &pods["subresources"];
    assert_eq!(
        find(subs, "subresource", "eviction")["responseKind"]["group"],
        "policy"
    );
    assert_eq!(find(subs, "subresource", "binding")["verbs"], json!(["create"]));
    assert_eq!(find(subs, "subresource", "log")["verbs"], json!(["get"]));
    assert_eq!(
        find(subs, "subresource", "exec")["verbs"],
        json!(["create", "get"])
    );
    assert_eq!(
        find(subs, "subresource", "exec")["responseKind"]["kind"],
        "PodExecOptions"
    );
}

#[tokio::test]
async fn plain_json_gets_legacy_documents() {
    let (_, headers, body) = fetch("/api", Some("application/json")).await;
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(body["kind"], "APIVersions");
    assert_eq!(body["versions"], json!(["v1"]));

    let (_, _, body) = fetch("/apis", None).await;
    assert_eq!(body["kind"], "APIGroupList");
    let autoscaling = find(&body["groups"], "name", "autoscaling");
    assert_eq!(autoscaling["preferredVersion"]["version"], "v2");
    assert_eq!(autoscaling["versions"][1]["groupVersion"], "autoscaling/v1");
}

#[tokio::test]
async fn protobuf_first_falls_through_to_aggregated_json() {
    let accept = "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,\
                  application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    assert_eq!(
        fetch("/apis", Some(accept)).await.1[header::CONTENT_TYPE],
        AGGREGATED_CONTENT_TYPE
    );
    let only_beta =
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    assert_eq!(
        fetch("/apis", Some(only_beta)).await.1[header::CONTENT_TYPE],
        "application/json"
    );
}

#[tokio::test]
async fn legacy_resource_lists_carry_subresources_and_hashes() {
    let (status, _, body) = fetch("/api/v1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["groupVersion"], "v1");
    assert!(body.get("apiVersion").is_none());
    let res = &body["resources"];
    let pods = find(res, "name", "pods");
    assert_eq!(pods["singularName"], "pod");
    assert_eq!(pods["shortNames"], json!(["po"]));
    // Upstream's value for core/v1 Pod.
    assert_eq!(pods["storageVersionHash"], "xPOwRZ+Yhw8=");
    let eviction = find(res, "name", "pods/eviction");
    assert_eq!(
        (&eviction["group"], &eviction["version"]),
        (&json!("policy"), &json!("v1"))
    );
    let names: Vec<&str> = res
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);

    let (_, _, body) = fetch("/apis/apps/v1", None).await;
    assert_eq!(body["apiVersion"], "v1");
    let scale = find(&body["resources"], "name", "statefulsets/scale");
    assert_eq!(scale["group"], "autoscaling");
    assert_eq!(scale["kind"], "Scale");
    assert!(
        find(&body["resources"], "name", "deployments/status")
            .get("group")
            .is_none()
    );
}

#[tokio::test]
async fn shared_storage_shares_the_hash() {
    let (_, _, v1) = fetch("/apis/autoscaling/v1", None).await;
    let (_, _, v2) = fetch("/apis/autoscaling/v2", None).await;
    let hash = |doc: &Value| {
        find(&doc["resources"], "name", "horizontalpodautoscalers")["storageVersionHash"].clone()
    };
    assert_eq!(hash(&v1), hash(&v2));
}

#[tokio::test]
async fn group_document_and_unknowns() {
    let (status, _, body) = fetch("/apis/apps", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["kind"], "APIGroup");
    assert_eq!(body["preferredVersion"]["groupVersion"], "apps/v1");
    let (status, _, body) = fetch("/apis/nope.example.com", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["reason"], "NotFound");
    assert_eq!(fetch("/apis/apps/v9", None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(fetch("/api/v2", None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn version_reports_kubernetes_minor() {
    let (_, _, body) = fetch("/version", None).await;
    assert_eq!(body["major"], "1");
    assert_eq!(body["minor"], "33");
    assert_eq!(body["gitVersion"], "v1.33.0+skiff");
    assert!(body["platform"].as_str().unwrap().starts_with("linux/"));
}

#[tokio::test]
async fn etag_revalidation_returns_not_modified() {
    let app = router(Arc::new(Registry::builtin()));
    let req = |etag: Option<&str>| {
        let mut b = Request::builder()
            .uri("/apis")
            .header(header::ACCEPT, KUBECTL_ACCEPT);
        if let Some(e) = etag {
            b = b.header(header::IF_NONE_MATCH, e);
        }
        b.body(Body::empty()).unwrap()
    };
    let first = app.clone().oneshot(req(None)).await.unwrap();
    let etag = first.headers()[header::ETAG].to_str().unwrap().to_string();
    let second = app.oneshot(req(Some(&etag))).await.unwrap();
    assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn legacy_documents_decode_as_client_types() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    let (_, _, body) = fetch("/api", None).await;
    let versions: meta::APIVersions = serde_json::from_value(body).unwrap();
    assert_eq!(versions.versions, ["v1"]);
    let (_, _, body) = fetch("/apis", None).await;
    let groups: meta::APIGroupList = serde_json::from_value(body).unwrap();
    let registry = Registry::builtin();
    for group in &groups.groups {
        let (_, _, body) = fetch(&format!("/apis/{}", group.name), None).await;
        let _: meta::APIGroup = serde_json::from_value(body).unwrap();
        for v in &group.versions {
            let (_, _, body) = fetch(&format!("/apis/{}", v.group_version), None).await;
            let list: meta::APIResourceList = serde_json::from_value(body).unwrap();
            let served = registry.in_group_version(&group.name, &v.version).count();
            assert_eq!(
                list.resources.iter().filter(|r| !r.name.contains('/')).count(),
                served
            );
        }
    }
    let (_, _, body) = fetch("/api/v1", None).await;
    let list: meta::APIResourceList = serde_json::from_value(body).unwrap();
    assert!(
        list.resources
            .iter()
            .any(|r| r.name == "pods/log" && r.verbs == ["get"])
    );
}

/// kube-rs's discovery (legacy and aggregated) over the router as an
/// in-process service, as skiff's own components see it.
#[tokio::test]
async fn kube_rs_discovery_resolves_every_kind() {
    use kube::discovery::{Discovery, Scope};
    let client = kube::Client::new(router(Arc::new(Registry::builtin())), "default");
    for aggregated in [false, true] {
        let discovery = Discovery::new(client.clone());
        let discovery = if aggregated {
            discovery.run_aggregated().await.unwrap()
        } else {
            discovery.run().await.unwrap()
        };
        let apps = discovery.get("apps").unwrap();
        let (deploy, caps) = apps.recommended_kind("Deployment").unwrap();
        assert_eq!(deploy.plural, "deployments");
        assert_eq!(caps.scope, Scope::Namespaced);
        assert!(
            caps.subresources
                .iter()
                .any(|(sub, _)| sub.plural == "deployments/scale" || sub.plural == "scale")
        );
        let autoscaling = discovery.get("autoscaling").unwrap();
        assert_eq!(autoscaling.preferred_version_or_latest(), "v2");
        let core = discovery.get("").unwrap();
        let (node, caps) = core.recommended_kind("Node").unwrap();
        assert_eq!(node.plural, "nodes");
        assert_eq!(caps.scope, Scope::Cluster);
    }
}
