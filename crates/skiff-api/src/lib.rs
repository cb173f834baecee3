//! skiff-api: the Kubernetes object model skiff serves, with no I/O.
//!
//! Owns: the registry of built-in kinds ([`registry`]), upstream-style errors
//! ([`status`]), and the rules the API server applies to objects: selectors,
//! patches, defaulting, validation and Table columns.
//!
//! Must not: perform I/O, know about storage or HTTP. Everything here is a pure
//! function over `serde_json::Value` objects (typed through `k8s-openapi`
//! where a rule needs the schema).

pub mod certificates;
pub mod conversion;
pub mod defaults;
pub mod patch;
pub mod quota;
pub mod registry;
pub mod selector;
pub mod status;
pub mod table;
pub mod validation;
