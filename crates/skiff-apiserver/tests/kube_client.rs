//! The API server driven by the real kube-rs client over its router as an
//! in-process tower Service: conflicts, watch resume, pagination, selectors,
//! the status subresource, dryRun, generateName and Service allocation.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::Status;
use serde_json::json;
use skiff_apiserver::server::ApiServerConfig;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
        "data": {"k": "v"},
    }))
    .unwrap()
}

fn status_of(err: kube::Error) -> Box<Status> {
    match err {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn default_namespaces_and_kubernetes_service_exist() {
    let f = common::start().await;
    let ns: Api<Namespace> = Api::all(f.client.clone());
    let names: Vec<String> = ns
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(names.contains(&want.to_string()), "{want} missing from {names:?}");
    }
    let svc: Api<Service> = Api::namespaced(f.client.clone(), "default");
    let k = svc.get("kubernetes").await.unwrap();
    assert_eq!(k.spec.unwrap().cluster_ip.as_deref(), Some("10.43.0.1"));
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict() {
    let f = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(f.client.clone());
    let created = api.create(&PostParams::default(), &cm("a", &[])).await.unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let mut first = created.clone();
    first.data = Some(BTreeMap::from([("k".into(), "v2".into())]));
    let updated = api.replace("a", &PostParams::default(), &first).await.unwrap();
    assert_ne!(updated.metadata.resource_version.as_deref(), Some(rv.as_str()));
    let mut stale = created;
    stale.data = Some(BTreeMap::from([("k".into(), "v3".into())]));
    let err = status_of(
        api.replace("a", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(api.get("a").await.unwrap().data.unwrap()["k"], "v2");
    let err = status_of(
        api.create(&PostParams::default(), &cm("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
}

#[tokio::test]
async fn watch_resumes_from_a_revision() {
    let f = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(f.client.clone());
    let first = api.create(&PostParams::default(), &cm("w0", &[])).await.unwrap();
    let from = first.metadata.resource_version.unwrap();
    api.create(&PostParams::default(), &cm("w1", &[])).await.unwrap();
    api.delete("w0", &DeleteParams::default()).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &from)
        .await
        .unwrap()
        .boxed();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.metadata.name.unwrap())),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["ADDED w1", "DELETED w0"]);
}

#[tokio::test]
async fn watch_from_an_expired_revision_is_gone() {
    let f = common::start_with(ApiServerConfig {
        watch_history: 3,
        ..Default::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::default_namespaced(f.client.clone());
    let first = api.create(&PostParams::default(), &cm("g0", &[])).await.unwrap();
    for i in 1..6 {
        api.create(&PostParams::default(), &cm(&format!("g{i}"), &[]))
            .await
            .unwrap();
    }
    let from = first.metadata.resource_version.unwrap();
    let result = api.watch(&WatchParams::default().timeout(2), &from).await;
    let err = match result {
        Err(e) => status_of(e),
        Ok(s) => match s.boxed().try_next().await {
            Ok(Some(WatchEvent::Error(e))) => e,
            Err(e) => status_of(e),
            other => panic!("expected 410, got {other:?}"),
        },
    };
    assert_eq!(err.code, 410);
    assert_eq!(err.reason, "Expired");
}

#[tokio::test]
async fn pagination_with_limit_and_continue() {
    let f = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(f.client.clone());
    for i in 0..25 {
        api.create(&PostParams::default(), &cm(&format!("p{i:02}"), &[]))
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(10);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        names.extend(page.items.into_iter().map(|c| c.metadata.name.unwrap()));
        // A write between pages must not change what later pages show.
        if pages == 1 {
            api.create(&PostParams::default(), &cm("p99-late", &[]))
                .await
                .unwrap();
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25);
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), 25);
}

#[tokio::test]
async fn label_and_field_selectors() {
    let f = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(f.client.clone());
    api.create(
        &PostParams::default(),
        &cm("web", &[("app", "web"), ("tier", "front")]),
    )
    .await
    .unwrap();
    api.create(&PostParams::default(), &cm("db", &[("app", "db")]))
        .await
        .unwrap();
    let names = |l: kube::core::ObjectList<ConfigMap>| {
        l.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(api.list(&ListParams::default().labels("app=web")).await.unwrap()),
        ["web"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app in (web,db),!tier"))
                .await
                .unwrap()
        ),
        ["db"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=db"))
                .await
                .unwrap()
        ),
        ["db"]
    );
    let all: Api<ConfigMap> = Api::all(f.client.clone());
    assert_eq!(
        all.list(&ListParams::default().fields("metadata.namespace=default"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        },
    }))
    .unwrap()
}

#[tokio::test]
async fn status_subresource_is_separate_from_the_main_resource() {
    let f = common::start().await;
    let api: Api<Deployment> = Api::default_namespaced(f.client.clone());
    let d = api
        .create(&PostParams::default(), &deployment("d"))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    let patched = api
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}, "status": {"replicas": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(patched.status.as_ref().and_then(|s| s.replicas), None);
    assert_eq!(patched.metadata.generation, Some(2));
    let st = api
        .patch_status(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 9}, "status": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(st.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(st.status.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(st.metadata.generation, Some(2));
    let label_only = api
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(label_only.metadata.generation, Some(2));
    let scale = api.get_scale("d").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    let scaled = api
        .patch_scale(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(5));
    assert_eq!(api.get("d").await.unwrap().spec.unwrap().replicas, Some(5));
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let f = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(f.client.clone());
    let pp = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let out = api.create(&pp, &cm("dry", &[])).await.unwrap();
    assert_eq!(out.metadata.name.as_deref(), Some("dry"));
    assert!(api.get_opt("dry").await.unwrap().is_none());
    api.create(&PostParams::default(), &cm("wet", &[])).await.unwrap();
    api.delete("wet", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    assert!(api.get_opt("wet").await.unwrap().is_some());
}

#[tokio::test]
async fn generate_name_and_missing_namespace() {
    let f = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(f.client.clone());
    let mut c = cm("", &[]);
    c.metadata.name = None;
    c.metadata.generate_name = Some("gen-".into());
    let a = api.create(&PostParams::default(), &c).await.unwrap();
    let b = api.create(&PostParams::default(), &c).await.unwrap();
    let (a, b) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(a.starts_with("gen-") && a.len() == 9 && a != b);
    let nowhere: Api<ConfigMap> = Api::namespaced(f.client.clone(), "nowhere");
    let err = status_of(
        nowhere
            .create(&PostParams::default(), &cm("x", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let f = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(f.client.clone());
    let mut c = cm("fin", &[]);
    c.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &c).await.unwrap();
    api.delete("fin", &DeleteParams::default()).await.unwrap();
    let held = api.get("fin").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    api.patch(
        "fin",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("fin").await.unwrap().is_none());
}

#[tokio::test]
async fn bound_pods_are_deleted_gracefully() {
    let f = common::start().await;
    let api: Api<Pod> = Api::default_namespaced(f.client.clone());
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
    let _: Status = api
        .create_subresource("binding", "p", &PostParams::default(), &binding)
        .await
        .unwrap();
    assert_eq!(
        api.get("p").await.unwrap().spec.unwrap().node_name.as_deref(),
        Some("n1")
    );
    let err = api
        .create_subresource::<_, Status>("binding", "p", &PostParams::default(), &binding)
        .await;
    assert_eq!(status_of(err.unwrap_err()).code, 409);
    api.delete("p", &DeleteParams::default()).await.unwrap();
    assert!(api.get("p").await.unwrap().metadata.deletion_timestamp.is_some());
    api.delete("p", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(api.get_opt("p").await.unwrap().is_none());
}

fn service(name: &str, ty: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"type": ty, "selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }))
    .unwrap()
}

#[tokio::test]
async fn concurrent_service_creates_get_distinct_ips_and_ports() {
    let f = common::start().await;
    let api: Api<Service> = Api::default_namespaced(f.client.clone());
    let creates = (0..50).map(|i| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &service(&format!("s{i}"), "NodePort"))
                .await
                .unwrap()
        }
    });
    let created = futures::future::join_all(creates).await;
    let ips: HashSet<String> = created
        .iter()
        .map(|s| s.spec.as_ref().unwrap().cluster_ip.clone().unwrap())
        .collect();
    let ports: HashSet<i32> = created
        .iter()
        .map(|s| {
            s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0]
                .node_port
                .unwrap()
        })
        .collect();
    assert_eq!(ips.len(), 50);
    assert_eq!(ports.len(), 50);
    assert!(ips.iter().all(|ip| ip.starts_with("10.43.") && ip != "10.43.0.1"));
    assert!(ports.iter().all(|p| (30000..=32767).contains(p)));

    // A requested address that is taken is refused; a released one can be reused.
    let taken = created[0].spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    let mut dup = service("dup", "ClusterIP");
    dup.spec.as_mut().unwrap().cluster_ip = Some(taken.clone());
    let err = status_of(api.create(&PostParams::default(), &dup).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    api.delete("s0", &DeleteParams::default()).await.unwrap();
    let reused = api.create(&PostParams::default(), &dup).await.unwrap();
    assert_eq!(reused.spec.unwrap().cluster_ip, Some(taken));
    let mut headless = service("headless", "ClusterIP");
    headless.spec.as_mut().unwrap().cluster_ip = Some("None".into());
    assert_eq!(
        api.create(&PostParams::default(), &headless)
            .await
            .unwrap()
            .spec
            .unwrap()
            .cluster_ip
            .as_deref(),
        Some("None")
    );
}

#[tokio::test]
async fn server_side_apply_creates_then_updates() {
    let f = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(f.client.clone());
    let applied =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}});
    let pp = PatchParams::apply("tester");
    let first = api.patch("ssa", &pp, &Patch::Apply(&applied)).await.unwrap();
    assert_eq!(first.data.unwrap()["a"], "1");
    let applied =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "2"}});
    let second = api.patch("ssa", &pp, &Patch::Apply(&applied)).await.unwrap();
    assert_eq!(second.data.unwrap()["a"], "2");
}

#[tokio::test]
async fn runtime_watcher_sees_changes() {
    let f = common::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(f.client.clone());
    api.create(&PostParams::default(), &cm("before", &[]))
        .await
        .unwrap();
    let mut events = kube::runtime::watcher(api.clone(), kube::runtime::watcher::Config::default()).boxed();
    let creator = {
        let api = api.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            api.create(&PostParams::default(), &cm("after", &[]))
                .await
                .unwrap();
        })
    };
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains("after") {
        let ev = tokio::time::timeout_at(deadline, events.try_next())
            .await
            .expect("timed out")
            .unwrap()
            .unwrap();
        match ev {
            kube::runtime::watcher::Event::InitApply(o) | kube::runtime::watcher::Event::Apply(o) => {
                seen.insert(o.metadata.name.unwrap());
            }
            _ => {}
        }
    }
    assert!(seen.contains("before"));
    creator.await.unwrap();
}
