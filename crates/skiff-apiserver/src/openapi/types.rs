//! Which `k8s-openapi` type describes each served kind, so its schema (and
//! every schema it references) can be generated with `schemars`.
//!
//! Must not: decide what is served; the [`skiff_api::registry::Registry`]
//! does. A kind the registry serves but this table lacks is described by a
//! generic object schema (see [`super::schemas`]).

use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};

/// Registers a type's schema (and its dependencies) in a generator and
/// returns its definition name.
pub(crate) type Register = fn(&mut SchemaGenerator) -> String;

fn register<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// Declares `(group, version, kind, register)` rows from resource types.
macro_rules! kinds {
    ($($ty:ty),* $(,)?) => {
        vec![$((
            <$ty as k8s_openapi::Resource>::GROUP,
            <$ty as k8s_openapi::Resource>::VERSION,
            <$ty as k8s_openapi::Resource>::KIND,
            register::<$ty> as Register,
        )),*]
    };
}

/// Every top-level kind skiff can describe: resource kinds and the kinds of
/// subresources (`Scale`, `Eviction`, `Binding`, ...).
pub(crate) fn known_kinds() -> Vec<(&'static str, &'static str, &'static str, Register)> {
    use k8s_openapi::api::{
        apps::v1 as apps, authentication::v1 as authn, autoscaling::v1 as as1, autoscaling::v2 as as2,
        batch::v1 as batch, coordination::v1 as coord, core::v1 as core, discovery::v1 as disc,
        events::v1 as ev, policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as sched,
        storage::v1 as storage,
    };
    kinds![
        core::Namespace,
        core::Node,
        core::Pod,
        core::Service,
        core::Endpoints,
        core::ConfigMap,
        core::Secret,
        core::ServiceAccount,
        core::Event,
        core::ReplicationController,
        core::PersistentVolume,
        core::PersistentVolumeClaim,
        core::ResourceQuota,
        core::LimitRange,
        core::PodTemplate,
        core::Binding,
        apps::Deployment,
        apps::ReplicaSet,
        apps::StatefulSet,
        apps::DaemonSet,
        apps::ControllerRevision,
        batch::Job,
        batch::CronJob,
        k8s_openapi::api::certificates::v1::CertificateSigningRequest,
        coord::Lease,
        disc::EndpointSlice,
        ev::Event,
        rbac::Role,
        rbac::RoleBinding,
        rbac::ClusterRole,
        rbac::ClusterRoleBinding,
        as2::HorizontalPodAutoscaler,
        as1::HorizontalPodAutoscaler,
        as1::Scale,
        policy::PodDisruptionBudget,
        policy::Eviction,
        storage::StorageClass,
        sched::PriorityClass,
        authn::TokenRequest,
    ]
}

/// The register function of one kind, if this table knows it.
pub(crate) fn find_kind(group: &str, version: &str, kind: &str) -> Option<Register> {
    known_kinds()
        .into_iter()
        .find(|(g, v, k, _)| *g == group && *v == version && *k == kind)
        .map(|row| row.3)
}

/// Definition names of the meta types every group/version document carries.
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// Registers the meta types (`DeleteOptions`, `Status`, `WatchEvent`,
/// `Patch`, `ListMeta`) used by every operation.
pub(crate) fn register_meta(generator: &mut SchemaGenerator) {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::WatchEvent<serde_json::Value>>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::ListMeta>();
}
