//! [`CycleState`]: per-attempt scratch space where a plugin's PreFilter or
//! PreScore leaves data for its own Filter and Score calls.

use std::any::Any;
use std::collections::HashMap;

/// Typed values keyed by plugin, valid for one scheduling attempt.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
    skip_filter: u64,
    skip_score: u64,
}

impl std::fmt::Debug for CycleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CycleState")
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CycleState {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    /// Reads what was stored under `key`, if it has type `T`.
    pub fn read<T: Any + Send + Sync>(&self, key: &'static str) -> Option<&T> {
        self.data.get(key)?.downcast_ref()
    }

    /// Mutable access to what was stored under `key`.
    pub fn read_mut<T: Any + Send + Sync>(&mut self, key: &'static str) -> Option<&mut T> {
        self.data.get_mut(key)?.downcast_mut()
    }

    pub(crate) fn skip_filter(&mut self, index: usize) {
        self.skip_filter |= 1 << (index % 64);
    }

    pub(crate) fn skips_filter(&self, index: usize) -> bool {
        self.skip_filter & (1 << (index % 64)) != 0
    }

    pub(crate) fn skip_score(&mut self, index: usize) {
        self.skip_score |= 1 << (index % 64);
    }

    pub(crate) fn skips_score(&self, index: usize) -> bool {
        self.skip_score & (1 << (index % 64)) != 0
    }
}
