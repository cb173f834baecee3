//! Shared set-up for skiff's end-to-end tests: a [`Cluster`] is a real
//! `skiff server` on one [`Backend`] (embedded SQLite, or a throw-away etcd),
//! driven by the real kubectl. The tests themselves live in `tests/e2e/`.
//!
//! Every test starts its own cluster on its own loopback port and data dir,
//! so tests run in parallel and clean up after themselves, even on failure.

use skiff_testkit::etcd::EtcdFixture;
use skiff_testkit::kubectl::Kubectl;
use skiff_testkit::server::{ServerOptions, SkiffServer};

/// The demo manifest shipped in `examples/` (namespace, configmap, secret,
/// deployment, service), applied by the set-up script and by these tests.
pub const DEMO_MANIFEST: &str = include_str!("../../examples/demo.yaml");

/// Which datastore the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite in the data dir (the default).
    Sqlite,
    /// A real etcd v3 (Debian's etcd-server) via `--datastore-endpoint`.
    Etcd,
}

/// A running skiff server and, for [`Backend::Etcd`], its etcd.
pub struct Cluster {
    // Field order matters: the server is dropped (killed) before its etcd.
    /// The server process.
    pub server: SkiffServer,
    etcd: Option<EtcdFixture>,
}

impl Cluster {
    /// Starts a server on `backend` and waits until it is ready. The API
    /// server alone: these tests check what the API stores and serves, so no
    /// scheduler or controller changes objects behind their back (issue-3
    /// tests start whole clusters of their own).
    ///
    /// # Panics
    /// When etcd or the server cannot start (the test cannot go on).
    pub fn start(backend: Backend) -> Cluster {
        match backend {
            Backend::Sqlite => {
                let server = SkiffServer::start(ServerOptions::api_only())
                    .unwrap_or_else(|e| panic!("skiff server (sqlite) did not start: {e}"));
                Cluster { server, etcd: None }
            }
            Backend::Etcd => {
                let etcd = EtcdFixture::start().unwrap_or_else(|e| panic!("etcd did not start: {e}"));
                let server = SkiffServer::start(ServerOptions {
                    extra_args: ServerOptions::api_only().extra_args,
                    ..ServerOptions::etcd(etcd.endpoint())
                })
                .unwrap_or_else(|e| panic!("skiff server (etcd) did not start: {e}"));
                Cluster {
                    server,
                    etcd: Some(etcd),
                }
            }
        }
    }

    /// A kubectl bound to this cluster's admin kubeconfig.
    pub fn kubectl(&self) -> Kubectl {
        self.server.kubectl()
    }

    /// The etcd endpoint, when the cluster runs on etcd.
    pub fn etcd_endpoint(&self) -> Option<String> {
        self.etcd.as_ref().map(EtcdFixture::endpoint)
    }
}

/// Collapses runs of spaces in every line, so table rows compare without
/// depending on column widths: `"NAME   DATA   AGE"` becomes `"NAME DATA AGE"`.
pub fn squeeze(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The lines of `text`, trimmed, without empty ones.
pub fn lines(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

/// Parses kubectl's `-o json` output.
///
/// # Panics
/// When the output is not JSON (a test assertion).
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("kubectl printed no JSON ({e}):\n{text}"))
}

/// Defines one `#[test]` per backend for each listed scenario function
/// `fn name(backend: Backend)`: `sqlite::name` and `etcd::name`.
#[macro_export]
macro_rules! for_each_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::Backend::Sqlite) } )*
        }
        mod etcd {
            $( #[test] fn $name() { super::$name($crate::Backend::Etcd) } )*
        }
    };
}

/// Starts a cluster on `backend` with [`DEMO_MANIFEST`] applied.
///
/// # Panics
/// When the cluster does not start or the apply fails.
pub fn demo_cluster(backend: Backend) -> (Cluster, Kubectl) {
    let cluster = Cluster::start(backend);
    let kubectl = cluster.kubectl();
    kubectl.ok_stdin(&["apply", "-f", "-"], Some(DEMO_MANIFEST));
    (cluster, kubectl)
}

/// The row of a `kubectl get` table (squeezed, see [`squeeze`]) whose first
/// column is `name`.
///
/// # Panics
/// When there is no such row (a test assertion).
pub fn row(table: &str, name: &str) -> String {
    squeeze(table)
        .into_iter()
        .find(|line| line.split(' ').next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name:?} in:\n{table}"))
}
