//! Service-account tokens end to end over the router: a TokenRequest through
//! kube-rs, the token as a bearer (accepted, tampered, for a deleted pod),
//! request checks (404 account, 422 lifetime) and the kube-api-access volume
//! the ServiceAccount admission adds to new pods.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::Next;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use skiff_apiserver::authn::{Authenticator, UserInfo, error_response};
use skiff_apiserver::server::ApiServer;
use skiff_apiserver::serviceaccount_token::{ServiceAccountTokens, SigningKey, TokenAuthenticator};

/// A client whose requests pass the authenticator: as `bearer` when given,
/// else as an admin client certificate would.
fn client(server: &Arc<ApiServer>, key: &Arc<SigningKey>, bearer: Option<String>) -> kube::Client {
    let authn = Arc::new(
        Authenticator::new().with_service_accounts(TokenAuthenticator::new(key.clone(), server.clone())),
    );
    let router = server
        .router()
        .layer(axum::Extension(ServiceAccountTokens::new(key.clone())))
        .layer(axum::middleware::from_fn(move |mut req: Request, next: Next| {
            let authn = authn.clone();
            let bearer = bearer.clone();
            async move {
                let admin = UserInfo::authenticated("admin", ["system:masters".to_string()]);
                if let Some(b) = &bearer {
                    req.headers_mut().insert(
                        http::header::AUTHORIZATION,
                        format!("Bearer {b}").parse().unwrap(),
                    );
                }
                let peer = bearer.is_none().then_some(&admin);
                match authn.authenticate(req.headers(), req.uri().path(), peer) {
                    Ok(user) => {
                        req.extensions_mut().insert(user);
                        next.run(req).await
                    }
                    Err(e) => error_response(&e.to_api_error()),
                }
            }
        }));
    kube::Client::new(router, "default")
}

fn api_code(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn setup() -> (common::Fixture, Arc<SigningKey>, kube::Client) {
    let f = common::start().await;
    let key = Arc::new(SigningKey::generate().unwrap());
    let admin = client(&f.server, &key, None);
    let sas: Api<ServiceAccount> = Api::default_namespaced(admin.clone());
    let sa = serde_json::from_value(json!({"metadata": {"name": "builder"}})).unwrap();
    sas.create(&PostParams::default(), &sa).await.unwrap();
    (f, key, admin)
}

fn token_request(seconds: Option<i64>, pod: Option<&Pod>) -> TokenRequest {
    let bound = pod.map(|p| {
        serde_json::from_value(json!({
            "kind": "Pod", "apiVersion": "v1",
            "name": p.metadata.name, "uid": p.metadata.uid,
        }))
        .unwrap()
    });
    TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: seconds,
            bound_object_ref: bound,
        },
        ..Default::default()
    }
}

fn pod(name: &str, sa: &str, automount: Option<bool>) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "serviceAccountName": sa,
            "automountServiceAccountToken": automount,
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "c", "image": "busybox"}],
        },
    }))
    .unwrap()
}

#[tokio::test]
async fn a_requested_token_authenticates_as_the_service_account() {
    let (f, key, admin) = setup().await;
    let sas: Api<ServiceAccount> = Api::default_namespaced(admin.clone());
    let now = jiff::Timestamp::now().as_second();
    let tr = sas
        .create_token_request("builder", &PostParams::default(), &token_request(None, None))
        .await
        .unwrap();
    assert_eq!(tr.spec.expiration_seconds, Some(3600));
    let status = tr.status.unwrap();
    let expires = status.expiration_timestamp.0.as_second();
    assert!((now + 3590..=now + 3610).contains(&expires), "{expires} vs {now}");

    let as_sa: Api<Pod> = Api::default_namespaced(client(&f.server, &key, Some(status.token.clone())));
    as_sa.list(&ListParams::default()).await.unwrap();

    let mut tampered = status.token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let bad: Api<Pod> = Api::default_namespaced(client(&f.server, &key, Some(tampered)));
    assert_eq!(api_code(bad.list(&ListParams::default()).await.unwrap_err()), 401);

    let other_key = Arc::new(SigningKey::generate().unwrap());
    let foreign: Api<Pod> = Api::default_namespaced(client(&f.server, &other_key, Some(status.token)));
    assert_eq!(
        api_code(foreign.list(&ListParams::default()).await.unwrap_err()),
        401
    );
}

#[tokio::test]
async fn token_requests_are_checked() {
    let (_f, _key, admin) = setup().await;
    let sas: Api<ServiceAccount> = Api::default_namespaced(admin);
    let pp = PostParams::default();
    let missing = sas
        .create_token_request("nobody", &pp, &token_request(None, None))
        .await;
    assert_eq!(api_code(missing.unwrap_err()), 404);
    let short = sas
        .create_token_request("builder", &pp, &token_request(Some(60), None))
        .await;
    assert_eq!(api_code(short.unwrap_err()), 422);
}

#[tokio::test]
async fn a_pod_bound_token_dies_with_its_pod() {
    let (f, key, admin) = setup().await;
    let pods: Api<Pod> = Api::default_namespaced(admin.clone());
    let p = pods
        .create(&PostParams::default(), &pod("p1", "builder", None))
        .await
        .unwrap();
    let sas: Api<ServiceAccount> = Api::default_namespaced(admin.clone());
    let tr = sas
        .create_token_request("builder", &PostParams::default(), &token_request(None, Some(&p)))
        .await
        .unwrap();
    let token = tr.status.unwrap().token;
    let as_sa: Api<Pod> = Api::default_namespaced(client(&f.server, &key, Some(token)));
    as_sa.list(&ListParams::default()).await.unwrap();
    pods.delete("p1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        api_code(as_sa.list(&ListParams::default()).await.unwrap_err()),
        401
    );

    let other = pods
        .create(&PostParams::default(), &pod("p2", "default", None))
        .await
        .unwrap();
    let wrong_sa = sas
        .create_token_request(
            "builder",
            &PostParams::default(),
            &token_request(None, Some(&other)),
        )
        .await;
    assert_eq!(api_code(wrong_sa.unwrap_err()), 400);
}

#[tokio::test]
async fn new_pods_get_the_kube_api_access_volume_unless_automount_is_off() {
    let (_f, _key, admin) = setup().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(admin.clone());
    let cm =
        serde_json::from_value(json!({"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "x"}}))
            .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let pods: Api<Pod> = Api::default_namespaced(admin);
    let p = pods
        .create(&PostParams::default(), &pod("with", "builder", None))
        .await
        .unwrap();
    let spec = p.spec.unwrap();
    let vol = &spec.volumes.unwrap()[0];
    assert!(vol.name.starts_with("kube-api-access-"), "{}", vol.name);
    let sources = vol.projected.as_ref().unwrap().sources.as_ref().unwrap();
    assert_eq!(
        sources[0]
            .service_account_token
            .as_ref()
            .unwrap()
            .expiration_seconds,
        Some(3607)
    );
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let m = &c.volume_mounts.as_ref().unwrap()[0];
        assert_eq!(m.mount_path, "/var/run/secrets/kubernetes.io/serviceaccount");
        assert_eq!(m.name, vol.name);
        assert_eq!(m.read_only, Some(true));
    }
    let off = pods
        .create(&PostParams::default(), &pod("without", "builder", Some(false)))
        .await
        .unwrap();
    let spec = off.spec.unwrap();
    assert!(spec.volumes.unwrap_or_default().is_empty());
    assert!(
        spec.containers[0]
            .volume_mounts
            .clone()
            .unwrap_or_default()
            .is_empty()
    );
}
