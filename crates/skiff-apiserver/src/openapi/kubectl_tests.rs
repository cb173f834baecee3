//! The real kubectl (/usr/bin/kubectl) against the discovery and OpenAPI
//! routers served over loopback HTTP: `api-resources`, `explain`, and the
//! server-side field validation kubectl chooses from the v3 document.
//! Skipped, with a message, when kubectl is not installed.

use std::path::Path as FsPath;
use std::process::{Command, Output};
use std::sync::Mutex;

use axum::extract::Request;
use http_body_util::BodyExt;

use super::*;

const KUBECTL: &str = "/usr/bin/kubectl";

/// The two routers on 127.0.0.1, plus a fallback recording every other
/// request (method and URI) the way a resource handler would see it.
struct Served {
    url: String,
    /// `METHOD URI` of every request the fallback saw.
    seen: Arc<Mutex<Vec<String>>>,
    /// Request bodies the fallback saw.
    bodies: Arc<Mutex<Vec<String>>>,
    /// An object the fallback returns for GET and PATCH, when set.
    canned: Arc<Mutex<Option<Value>>>,
    dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

fn serve() -> Option<Served> {
    if !FsPath::new(KUBECTL).exists() {
        eprintln!("skipping: {KUBECTL} is not installed");
        return None;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let canned: Arc<Mutex<Option<Value>>> = Arc::new(Mutex::new(None));
    let registry = Arc::new(Registry::builtin());
    let (record, record_bodies, object) = (Arc::clone(&seen), Arc::clone(&bodies), Arc::clone(&canned));
    let app = crate::discovery::router(Arc::clone(&registry))
        .merge(router(registry))
        .fallback(move |req: Request| {
            let (record, record_bodies, object) = (
                Arc::clone(&record),
                Arc::clone(&record_bodies),
                Arc::clone(&object),
            );
            async move {
                let method = req.method().clone();
                record.lock().unwrap().push(format!("{method} {}", req.uri()));
                let body = req.into_body().collect().await.unwrap().to_bytes();
                record_bodies
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
                let canned = object.lock().unwrap().clone();
                let body = match canned {
                    Some(obj) if method == http::Method::GET || method == http::Method::PATCH => {
                        Bytes::from(serde_json::to_vec(&obj).unwrap())
                    }
                    _ if body.is_empty() => return not_found(),
                    _ => body,
                };
                // Echo the object back, as a server accepting it would.
                let mut resp = Response::new(Body::from(body));
                *resp.status_mut() = StatusCode::CREATED;
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                resp
            }
        });
    rt.spawn(async move { axum::serve(listener, app).await });
    Some(Served {
        url,
        seen,
        bodies,
        canned,
        dir: tempfile::tempdir().unwrap(),
        _rt: rt,
    })
}

impl Served {
    fn kubectl(&self, args: &[&str]) -> Output {
        let dir = self.dir.path();
        let out = Command::new(KUBECTL)
            .args(["--server", &self.url, "--cache-dir"])
            .arg(dir.join("cache"))
            .args(args)
            .env("KUBECONFIG", dir.join("no-kubeconfig"))
            .env("HOME", dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn stdout(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.kubectl(args).stdout).into_owned()
    }
}

/// The whitespace-separated columns of the row whose first cell is `name`
/// and whose APIVERSION column is `api_version`.
fn row<'a>(out: &'a str, name: &str, api_version: &str) -> Vec<&'a str> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&name) && cols.contains(&api_version))
        .unwrap_or_else(|| panic!("no row {name} {api_version} in:\n{out}"))
}

#[test]
fn kubectl_api_resources_lists_every_kind_like_upstream() {
    let Some(s) = serve() else { return };
    let out = s.stdout(&["api-resources"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]);
    assert_eq!(row(&out, "pods", "v1"), ["pods", "po", "v1", "true", "Pod"]);
    assert_eq!(row(&out, "nodes", "v1"), ["nodes", "no", "v1", "false", "Node"]);
    assert_eq!(row(&out, "secrets", "v1"), ["secrets", "v1", "true", "Secret"]);
    assert_eq!(
        row(&out, "deployments", "apps/v1"),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    assert_eq!(
        row(&out, "horizontalpodautoscalers", "autoscaling/v2"),
        [
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            "true",
            "HorizontalPodAutoscaler"
        ]
    );
    assert_eq!(
        row(&out, "clusterroles", "rbac.authorization.k8s.io/v1"),
        [
            "clusterroles",
            "rbac.authorization.k8s.io/v1",
            "false",
            "ClusterRole"
        ]
    );
    assert_eq!(row(&out, "events", "v1"), ["events", "ev", "v1", "true", "Event"]);
    assert_eq!(
        row(&out, "events", "events.k8s.io/v1"),
        ["events", "ev", "events.k8s.io/v1", "true", "Event"]
    );
    assert!(!out.contains("pods/"), "subresources are not listed:\n{out}");
    // Aggregated discovery was used: no per-group-version fetches.
    assert!(s.seen.lock().unwrap().is_empty(), "{:?}", s.seen.lock().unwrap());

    let version = s.stdout(&["version"]);
    assert!(version.contains("Server Version: v1.33.0+skiff"), "{version}");
    let wide = s.stdout(&["api-resources", "-o", "wide", "--api-group=apps"]);
    let deploy = row(&wide, "deployments", "apps/v1");
    assert_eq!(
        deploy[5],
        "create,delete,deletecollection,get,list,patch,update,watch"
    );
    assert_eq!(deploy[6], "all");
    let names = s.stdout(&["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(
        names.lines().any(|l| l == "namespaces") && !names.lines().any(|l| l == "pods"),
        "{names}"
    );
}

#[test]
fn kubectl_explain_reads_the_v3_documents() {
    let Some(s) = serve() else { return };
    let out = s.stdout(&["explain", "pods.spec.containers"]);
    assert!(out.contains("KIND:       Pod"), "{out}");
    assert!(out.contains("VERSION:    v1"), "{out}");
    assert!(out.contains("FIELD: containers <[]Container>"), "{out}");
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("image\t<string>")),
        "{out}"
    );
    assert!(out.contains("List of containers belonging to the pod."), "{out}");

    let out = s.stdout(&["explain", "deployment", "--recursive"]);
    let head: Vec<&str> = out.lines().take(12).collect();
    assert!(head.contains(&"KIND:       Deployment"), "{out}");
    assert!(head.contains(&"GROUP:      apps"), "{out}");
    assert!(out.contains("replicas\t<integer>"), "{out}");
    assert!(out.contains("strategy\t<DeploymentStrategy>"), "{out}");

    let out = s.stdout(&["explain", "pod.spec.restartPolicy"]);
    assert!(
        out.contains("ENUM:\n    Always\n    Never\n    OnFailure"),
        "{out}"
    );
    let out = s.stdout(&["explain", "hpa.spec.metrics"]);
    assert!(out.contains("VERSION:    v2"), "{out}");
    let out = s.stdout(&["explain", "svc.spec.ports.targetPort"]);
    assert!(out.contains("<IntOrString>"), "{out}");
}

#[test]
fn kubectl_strict_validation_is_left_to_the_server() {
    let Some(s) = serve() else { return };
    let manifest = s.dir.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: default\n\
         spec:\n  containers:\n  - name: web\n    image: busybox\n    bogus: 1\n",
    )
    .unwrap();
    let path = manifest.to_string_lossy().into_owned();
    s.kubectl(&["create", "--validate=strict", "-f", &path]);
    let seen = s.seen.lock().unwrap().clone();
    let post = seen
        .iter()
        .find(|r| r.starts_with("POST /api/v1/namespaces/default/pods"))
        .unwrap();
    assert!(post.contains("fieldValidation=Strict"), "{seen:?}");
}

#[test]
fn kubectl_apply_computes_strategic_patches_from_the_v3_merge_keys() {
    let Some(s) = serve() else { return };
    let manifest = |image: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: default\n\
             spec:\n  containers:\n  - name: web\n    image: {image}\n  - name: side\n    image: side:1\n"
        )
    };
    let applied: Value = serde_saphyr::from_str(&manifest("busybox:1")).unwrap();
    let mut live = applied.clone();
    live["metadata"]["annotations"] = json!({
        "kubectl.kubernetes.io/last-applied-configuration": serde_json::to_string(&applied).unwrap()
    });
    live["metadata"]["resourceVersion"] = json!("5");
    *s.canned.lock().unwrap() = Some(live);
    let path = s.dir.path().join("pod.yaml");
    std::fs::write(&path, manifest("busybox:2")).unwrap();
    s.kubectl(&["apply", "-f", &path.to_string_lossy()]);
    let seen = s.seen.lock().unwrap().clone();
    let i = seen
        .iter()
        .position(|r| r.starts_with("PATCH /api/v1/namespaces/default/pods/web"))
        .unwrap();
    let patch: Value = serde_json::from_str(&s.bodies.lock().unwrap()[i]).unwrap();
    // Only a list merged by `name` yields this shape: the changed item alone,
    // keyed, plus the element order.
    assert_eq!(
        patch["spec"]["containers"],
        json!([{"name": "web", "image": "busybox:2"}]),
        "{patch}"
    );
    assert_eq!(
        patch["spec"]["$setElementOrder/containers"],
        json!([{"name": "web"}, {"name": "side"}])
    );
}

#[test]
fn kubectl_reads_the_v2_protobuf_document() {
    let Some(s) = serve() else { return };
    let out = s.stdout(&[
        "explain",
        "deployment.spec.replicas",
        "--output=plaintext-openapiv2",
    ]);
    assert!(out.contains("KIND:     Deployment"), "{out}");
    assert!(out.contains("FIELD:    replicas <integer>"), "{out}");
}

#[test]
fn kubectl_validates_lists_client_side_with_upstream_message() {
    let Some(s) = serve() else { return };
    let manifest = s.dir.path().join("list.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: c\n\
         \x20 data:\n    a: b\n  bogus: 1\n",
    )
    .unwrap();
    let out = Command::new(KUBECTL)
        .args(["--server", &s.url, "--cache-dir"])
        .arg(s.dir.path().join("cache"))
        .args(["create", "--validate=strict", "-f"])
        .arg(&manifest)
        .env("KUBECONFIG", s.dir.path().join("no-kubeconfig"))
        .env("HOME", s.dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(r#"unknown field "bogus" in io.k8s.api.core.v1.ConfigMap"#),
        "{stderr}"
    );
    assert!(
        s.seen.lock().unwrap().iter().all(|r| !r.starts_with("POST")),
        "nothing was sent"
    );
}
