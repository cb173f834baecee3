//! OpenAPI documents as clients read them through the router.

use super::*;
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn fetch(app: &Router, uri: &str) -> (StatusCode, HeaderMap, Value) {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
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

fn app() -> Router {
    router(Arc::new(Registry::builtin()))
}

#[tokio::test]
async fn v3_index_points_at_every_group_version() {
    let app = app();
    let (status, _, index) = fetch(&app, "/openapi/v3").await;
    assert_eq!(status, StatusCode::OK);
    let url = index["paths"]["api/v1"]["serverRelativeURL"].as_str().unwrap();
    assert!(url.starts_with("/openapi/v3/api/v1?hash="), "{url}");
    assert!(index["paths"]["apis/apps/v1"].is_object());
    assert!(index["paths"]["apis/autoscaling/v1"].is_object());
    let (status, headers, doc) = fetch(&app, url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "public, immutable");
    assert_eq!(doc["openapi"], "3.0.0");
}

#[tokio::test]
async fn v3_core_document_describes_pods_like_upstream() {
    let (_, _, doc) = fetch(&app(), "/openapi/v3/api/v1").await;
    let schemas = &doc["components"]["schemas"];
    let pod = &schemas["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert!(pod.get("required").is_none(), "metadata is not required upstream");
    assert_eq!(
        pod["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    );
    assert_eq!(
        schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Container"
    );
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    let list = &schemas["io.k8s.api.core.v1.PodList"];
    assert_eq!(list["x-kubernetes-group-version-kind"][0]["kind"], "PodList");
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"],
        "int-or-string"
    );
    // Every $ref resolves inside the document.
    let text = serde_json::to_string(&doc).unwrap();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(schemas.get(name).is_some(), "dangling $ref {name}");
    }
}

#[tokio::test]
async fn v3_patch_operations_advertise_field_validation() {
    let (_, _, doc) = fetch(&app(), "/openapi/v3/apis/apps/v1").await;
    let item = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    let patch = &item["patch"];
    assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"fieldValidation") && names.contains(&"force"),
        "{names:?}"
    );
    assert!(patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object());
    let post = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"];
    assert!(
        post["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    let scale = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["get"];
    assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
    assert_eq!(
        scale["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
    );
    assert!(doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
}

#[tokio::test]
async fn v2_document_uses_definitions_refs() {
    let (status, _, doc) = fetch(&app(), "/openapi/v2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["swagger"], "2.0");
    let defs = &doc["definitions"];
    let spec = &defs["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
    assert_eq!(spec["$ref"], "#/definitions/io.k8s.api.apps.v1.DeploymentSpec");
    assert!(spec["description"].is_string());
    let post = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"];
    assert_eq!(post["parameters"][0]["in"], "body");
    assert!(
        post["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    assert!(doc["paths"]["/api/v1/pods"]["get"]["operationId"] == "listCoreV1PodForAllNamespaces");
}

#[tokio::test]
async fn stale_hash_redirects_and_unknown_is_404() {
    let app = app();
    let (status, headers, _) = fetch(&app, "/openapi/v3/api/v1?hash=0000").await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/openapi/v3/api/v1?hash=")
    );
    let (status, _, body) = fetch(&app, "/openapi/v3/apis/nope/v1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["reason"], "NotFound");
}
