//! Labels and annotations the agent puts on CRI sandboxes and containers,
//! the same keys the kubelet uses, so a restarted agent (and `ctr`/`crictl`)
//! can tell which pod and container every runtime object belongs to.

/// Sandbox and container label: the pod's name.
pub const POD_NAME: &str = "io.kubernetes.pod.name";
/// Sandbox and container label: the pod's namespace.
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Sandbox and container label: the pod's UID.
pub const POD_UID: &str = "io.kubernetes.pod.uid";
/// Container label: the container's name in the pod spec.
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Container annotation: how many times this container had been restarted
/// when this instance was created (the kubelet's restartCount).
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
/// Container annotation: a hash of the container's spec, to notice changes.
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
/// Container annotation: the pod's termination grace period in seconds.
pub const TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
/// Label every skiff-created sandbox and container carries, with value "true".
pub const MANAGED_BY_SKIFF: &str = "io.skiff.managed";
