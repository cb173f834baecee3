//! [`Status`]: what a plugin reports at an extension point, with upstream's
//! codes.

/// A plugin's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The pod may proceed.
    Success,
    /// The pod does not fit now; preemption may help.
    Unschedulable,
    /// The pod does not fit and preemption cannot help on this node.
    UnschedulableAndUnresolvable,
    /// An internal error.
    Error,
    /// The plugin has nothing to do for this pod (its later points are skipped).
    Skip,
}

/// A code and human-readable reasons (shown in `FailedScheduling` events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The verdict.
    pub code: Code,
    /// Why, one reason per failed check.
    pub reasons: Vec<String>,
    /// The plugin that reported it (filled in by the framework).
    pub plugin: &'static str,
}

impl Status {
    /// Success.
    pub fn success() -> Self {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    /// Skip.
    pub fn skip() -> Self {
        Status {
            code: Code::Skip,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    /// A status with one reason.
    pub fn new(code: Code, reason: impl Into<String>) -> Self {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }

    /// Unschedulable, with these reasons.
    pub fn unschedulable(reasons: Vec<String>) -> Self {
        Status {
            code: Code::Unschedulable,
            reasons,
            plugin: "",
        }
    }

    /// An internal error.
    pub fn error(reason: impl Into<String>) -> Self {
        Status::new(Code::Error, reason)
    }

    /// Whether the code is Success.
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    /// Whether the pod was rejected (either unschedulable code).
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable
        )
    }

    /// The reasons joined, as upstream's `Status.Message()`.
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }

    pub(crate) fn with_plugin(mut self, plugin: &'static str) -> Self {
        self.plugin = plugin;
        self
    }
}
