//! Where answers come from: Services and EndpointSlices, through kube
//! reflector stores in the server and through plain vectors in tests.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{ObjectRef, Store};

/// Label tying an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Read access to the objects DNS answers are built from.
pub trait Lookup {
    /// The Service `ns/name`.
    fn service(&self, ns: &str, name: &str) -> Option<Arc<Service>>;
    /// The EndpointSlices of Service `ns/name`.
    fn slices(&self, ns: &str, name: &str) -> Vec<Arc<EndpointSlice>>;
    /// All Services (for reverse lookups).
    fn services(&self) -> Vec<Arc<Service>>;
}

/// True when `slice` belongs to Service `ns/name`.
pub fn slice_of(slice: &EndpointSlice, ns: &str, name: &str) -> bool {
    slice.metadata.namespace.as_deref() == Some(ns)
        && slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .map(String::as_str)
            == Some(name)
}

/// Reflector stores kept up to date by [`crate::serve`].
#[derive(Clone)]
pub struct Stores {
    /// Services.
    pub services: Store<Service>,
    /// EndpointSlices.
    pub slices: Store<EndpointSlice>,
}

impl Lookup for Stores {
    fn service(&self, ns: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get(&ObjectRef::new(name).within(ns))
    }

    fn slices(&self, ns: &str, name: &str) -> Vec<Arc<EndpointSlice>> {
        self.slices
            .state()
            .into_iter()
            .filter(|s| slice_of(s, ns, name))
            .collect()
    }

    fn services(&self) -> Vec<Arc<Service>> {
        self.services.state()
    }
}

/// A fixed set of objects (tests, benchmarks).
#[derive(Default, Clone)]
pub struct Fixed {
    /// Services.
    pub services: Vec<Arc<Service>>,
    /// EndpointSlices.
    pub slices: Vec<Arc<EndpointSlice>>,
}

impl Lookup for Fixed {
    fn service(&self, ns: &str, name: &str) -> Option<Arc<Service>> {
        self.services
            .iter()
            .find(|s| s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(name))
            .cloned()
    }

    fn slices(&self, ns: &str, name: &str) -> Vec<Arc<EndpointSlice>> {
        self.slices
            .iter()
            .filter(|s| slice_of(s, ns, name))
            .cloned()
            .collect()
    }

    fn services(&self) -> Vec<Arc<Service>> {
        self.services.clone()
    }
}
