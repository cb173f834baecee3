//! The same client-visible behaviour on the embedded SQLite store:
//! conflicts, watch resume, pagination, Service allocation and restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_conflict_watch_and_paging_on_sqlite() {
    let f = common::start_sqlite().await;
    let api: Api<ConfigMap> = Api::default_namespaced(f.client.clone());
    let first = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let from = first.metadata.resource_version.clone().unwrap();
    let mut changed = first.clone();
    changed.data = Some(BTreeMap::from([("k".into(), "v2".into())]));
    api.replace("a", &PostParams::default(), &changed).await.unwrap();
    let err = api
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 409));
    for i in 0..12 {
        api.create(&PostParams::default(), &cm(&format!("p{i:02}")))
            .await
            .unwrap();
    }
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &from)
        .await
        .unwrap()
        .boxed();
    let mut kinds = Vec::new();
    while kinds.len() < 14 {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(_) => kinds.push("ADDED"),
            WatchEvent::Modified(_) => kinds.push("MODIFIED"),
            WatchEvent::Deleted(_) => kinds.push("DELETED"),
            _ => {}
        }
    }
    assert_eq!((kinds[0], kinds[13]), ("MODIFIED", "DELETED"));
    let mut names = HashSet::new();
    let mut lp = ListParams::default().limit(5);
    loop {
        let page = api.list(&lp).await.unwrap();
        names.extend(page.items.into_iter().map(|c| c.metadata.name.unwrap()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(t) => lp = ListParams::default().limit(5).continue_token(&t),
            None => break,
        }
    }
    assert_eq!(names.len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocations_survive_a_restart_on_sqlite() {
    let f = common::start_sqlite().await;
    let api: Api<Service> = Api::default_namespaced(f.client.clone());
    let svc = |n: &str| -> Service {
        serde_json::from_value(json!({"metadata": {"name": n}, "spec": {"ports": [{"port": 80}]}})).unwrap()
    };
    let a = api.create(&PostParams::default(), &svc("a")).await.unwrap();
    let path = f.dir.path().join("state.db");
    drop(api);
    drop(f.client);
    drop(f.server);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let store = std::sync::Arc::new(skiff_store::sqlite::SqliteStore::open(&path).unwrap());
    let server = skiff_apiserver::server::ApiServer::new(store, Default::default()).unwrap();
    assert!(server.wait_ready(std::time::Duration::from_secs(10)).await);
    let api: Api<Service> = Api::default_namespaced(kube::Client::new(server.router(), "default"));
    assert_eq!(
        api.get("a").await.unwrap().spec.unwrap().cluster_ip,
        a.spec.as_ref().unwrap().cluster_ip
    );
    let mut ips = HashSet::new();
    ips.insert(a.spec.unwrap().cluster_ip.unwrap());
    for i in 0..20 {
        let s = api
            .create(&PostParams::default(), &svc(&format!("s{i}")))
            .await
            .unwrap();
        assert!(ips.insert(s.spec.unwrap().cluster_ip.unwrap()));
    }
}
