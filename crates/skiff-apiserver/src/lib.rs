//! skiff-apiserver: the Kubernetes REST API over a [`skiff_store::Store`].
//!
//! Owns: HTTP routing and content negotiation, one handler per verb, the watch
//! cache, discovery and OpenAPI documents, ClusterIP/NodePort allocation, TLS
//! serving with client-certificate authentication, the cluster PKI and the
//! admin kubeconfig.
//!
//! Must not: talk to containers (CRI) or parse store internals; object rules
//! (patch, defaults, validation, tables) live in `skiff-api`.

pub mod authn;
pub mod discovery;
pub mod kubeconfig;
pub mod openapi;
pub mod pki;
pub mod tls;
pub mod errors;
pub mod negotiate;
pub mod request;
pub mod watchcache;
pub mod allocator;
pub mod handlers;
pub mod server;
pub mod strategy;
