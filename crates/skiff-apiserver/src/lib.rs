//! skiff-apiserver: the Kubernetes REST API over a [`skiff_store::Store`].
//!
//! Owns: HTTP routing and content negotiation, one handler per verb, the watch
//! cache, discovery and OpenAPI documents, ClusterIP/NodePort allocation, TLS
//! serving with client-certificate authentication, the cluster PKI and the
//! admin kubeconfig.
//!
//! Must not: talk to containers (CRI) or parse store internals; object rules
//! (patch, defaults, validation, tables) live in `skiff-api`.

pub mod admission;
pub mod allocator;
pub mod authn;
pub mod bootstrap;
pub mod discovery;
pub mod errors;
pub mod handlers;
pub mod kubeconfig;
pub mod negotiate;
pub mod openapi;
pub mod pki;
pub mod request;
pub mod server;
pub mod serviceaccount_token;
pub mod strategy;
pub mod tls;
pub mod watchcache;
