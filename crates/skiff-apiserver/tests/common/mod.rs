//! Shared fixtures: an API server over the in-memory store, and a kube-rs
//! client talking to its router in-process.

#![allow(dead_code, clippy::unwrap_used)]

pub mod memstore;

use std::sync::Arc;
use std::time::Duration;

use skiff_apiserver::server::{ApiServer, ApiServerConfig};

/// A started server and a client over its router.
pub struct Fixture {
    pub server: Arc<ApiServer>,
    pub client: kube::Client,
    pub store: Arc<memstore::MemStore>,
}

/// Starts a server with `config` over a fresh in-memory store.
pub async fn start_with(config: ApiServerConfig) -> Fixture {
    let store = Arc::new(memstore::MemStore::default());
    let server = ApiServer::new(store.clone(), config).unwrap();
    assert!(
        server.wait_ready(Duration::from_secs(5)).await,
        "server not ready"
    );
    let client = kube::Client::new(server.router(), "default");
    Fixture {
        server,
        client,
        store,
    }
}

/// Starts a server with the default config.
pub async fn start() -> Fixture {
    start_with(ApiServerConfig::default()).await
}

/// A started server over the SQLite backend in a temporary directory.
pub struct SqliteFixture {
    pub server: Arc<ApiServer>,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
}

/// Starts a server over a fresh SQLite store.
pub async fn start_sqlite() -> SqliteFixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(skiff_store::sqlite::SqliteStore::open(dir.path().join("state.db")).unwrap());
    let server = ApiServer::new(store, ApiServerConfig::default()).unwrap();
    assert!(
        server.wait_ready(Duration::from_secs(10)).await,
        "server not ready"
    );
    let client = kube::Client::new(server.router(), "default");
    SqliteFixture { server, client, dir }
}
