//! The API server: configuration, start-up (watch cache, default namespaces,
//! the `default/kubernetes` Service), periodic store compaction, health
//! endpoints and the axum router over every built-in resource.
//!
//! Pod subresources `log`, `exec`, `attach` and `portforward` are proxied to
//! the node's agent (`handlers/node_proxy`); eviction honours
//! PodDisruptionBudgets (`handlers/eviction.rs`); quota is admitted in
//! `admission/`.
//!
//! Not done yet: the `kubernetes` Endpoints/EndpointSlice (left to the
//! endpoints controller); authorization; node/service proxy; the
//! namespaces/finalize subresource; namespace termination removes contents
//! directly instead of honouring their finalizers; protobuf responses (JSON is
//! served instead) and protobuf request bodies beyond the kinds kubectl's
//! generators create (`negotiate/protobuf.rs`).
//!
//! Must not: serve TLS or authenticate (the `skiff` binary wraps this router).

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use ipnet::Ipv4Net;
use serde_json::json;
use skiff_api::registry::Registry;
use skiff_store::Store;

use crate::allocator::ServiceAllocator;
use crate::watchcache::WatchCache;

/// Settings of one API server.
#[derive(Debug, Clone)]
pub struct ApiServerConfig {
    /// Where ClusterIPs come from (default 10.43.0.0/16).
    pub service_cidr: Ipv4Net,
    /// Where NodePorts come from (default 30000-32767).
    pub node_port_range: std::ops::RangeInclusive<u16>,
    /// How often the store is compacted.
    pub compaction_interval: Duration,
    /// How much store history compaction keeps.
    pub compaction_retention: Duration,
    /// Events each resource's watch cache keeps for watch resume and for
    /// watchers catching up after a burst (upstream's watch cache grows to
    /// 100Ki events); at most 64 MiB of objects per resource either way.
    pub watch_history: usize,
    /// The port the `kubernetes` Service targets (the HTTPS port).
    pub https_port: u16,
    /// `--default-not-ready-toleration-seconds`: the tolerationSeconds of the
    /// not-ready/unreachable NoExecute tolerations every new pod gets
    /// (upstream's DefaultTolerationSeconds admission).
    pub default_not_ready_toleration_seconds: i64,
}

impl Default for ApiServerConfig {
    fn default() -> Self {
        ApiServerConfig {
            service_cidr: Ipv4Net::new(Ipv4Addr::new(10, 43, 0, 0), 16).unwrap_or_default(),
            node_port_range: 30000..=32767,
            compaction_interval: Duration::from_secs(60),
            compaction_retention: Duration::from_secs(300),
            watch_history: 100 * 1024,
            https_port: 6443,
            default_not_ready_toleration_seconds: skiff_api::defaults::UPSTREAM_DEFAULT_TOLERATION_SECONDS,
        }
    }
}

/// Errors starting the API server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// The Kubernetes API over one store.
pub struct ApiServer {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub cache: Arc<WatchCache>,
    pub config: ApiServerConfig,
    pub(crate) services: ServiceAllocator,
    bootstrapped: std::sync::atomic::AtomicBool,
}

impl ApiServer {
    /// Starts an API server over `store`: the watch cache, the bootstrap of
    /// default objects and compaction run in the background (call inside a
    /// Tokio runtime). `/readyz` says ok once they are done.
    pub fn new(store: Arc<dyn Store>, config: ApiServerConfig) -> Result<Arc<ApiServer>, ServerError> {
        if config.node_port_range.is_empty() {
            return Err(ServerError::Config("empty node port range".into()));
        }
        if config.service_cidr.prefix_len() > 30 {
            return Err(ServerError::Config(format!(
                "service CIDR {} is too small",
                config.service_cidr
            )));
        }
        let cache = WatchCache::start(store.clone(), config.watch_history);
        let services =
            ServiceAllocator::new(store.clone(), config.service_cidr, config.node_port_range.clone());
        let server = Arc::new(ApiServer {
            store,
            registry: Arc::new(Registry::builtin()),
            cache,
            config,
            services,
            bootstrapped: std::sync::atomic::AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&server);
        tokio::spawn(async move {
            if let Some(s) = weak.upgrade() {
                s.bootstrap().await;
            }
        });
        tokio::spawn(compaction_loop(Arc::downgrade(&server)));
        Ok(server)
    }

    /// True once the watch cache is primed and default objects exist.
    pub fn is_ready(&self) -> bool {
        self.cache.is_ready() && self.bootstrapped.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until [`ApiServer::is_ready`] or `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_ready() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    async fn bootstrap(self: &Arc<Self>) {
        loop {
            self.cache.wait_ready(Duration::from_secs(3600)).await;
            match self.create_defaults().await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e.message, "bootstrap failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        self.bootstrapped
            .store(true, std::sync::atomic::Ordering::Release);
    }

    async fn create_defaults(self: &Arc<Self>) -> Result<(), skiff_api::status::ApiError> {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            crate::handlers::create_internal(self.clone(), "", "v1", "namespaces", None, obj).await?;
        }
        if self.cache.get("/registry/services/default/kubernetes").is_some() {
            return Ok(());
        }
        let ip = self.services.first_ip();
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP", "clusterIP": ip.to_string(), "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": self.config.https_port}],
            },
        });
        crate::handlers::create_internal(self.clone(), "", "v1", "services", Some("default"), svc).await
    }

    /// The router serving health, discovery, OpenAPI and every resource.
    /// Resource URLs are served by the fallback (after discovery's exact
    /// routes), which parses `/api/...` and `/apis/...` itself.
    pub fn router(self: &Arc<Self>) -> Router {
        let resources = Router::new()
            .route("/healthz", get(healthz))
            .route("/livez", get(healthz))
            .route("/readyz", get(readyz))
            .fallback(resource)
            .with_state(self.clone());
        resources
            .merge(crate::discovery::router(self.registry.clone()))
            .merge(crate::openapi::router(self.registry.clone()))
            .layer(DefaultBodyLimit::disable())
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(server): State<Arc<ApiServer>>) -> Response {
    if server.is_ready() {
        "ok".into_response()
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "[-]watch-cache not ready\nreadyz check failed",
        )
            .into_response()
    }
}

async fn resource(State(server): State<Arc<ApiServer>>, req: Request) -> Response {
    crate::handlers::handle(server, req).await
}

/// Compacts the store every interval to the revision seen `retention` ago, so
/// history for watch resume and paging stays available for that long.
async fn compaction_loop(server: std::sync::Weak<ApiServer>) {
    let (interval, retention) = match server.upgrade() {
        Some(s) => (s.config.compaction_interval, s.config.compaction_retention),
        None => return,
    };
    let mut samples: VecDeque<(Instant, i64)> = VecDeque::new();
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let Some(s) = server.upgrade() else { return };
        let Ok(rev) = s.store.current_revision().await else {
            continue;
        };
        let now = Instant::now();
        samples.push_back((now, rev));
        let mut target = None;
        while let Some((t, r)) = samples.front().copied() {
            if now.duration_since(t) >= retention {
                target = Some(r);
                samples.pop_front();
            } else {
                break;
            }
        }
        if let Some(r) = target
            && let Err(e) = s.store.compact(r).await
        {
            tracing::warn!(revision = r, error = %e, "store compaction failed");
        }
    }
}
