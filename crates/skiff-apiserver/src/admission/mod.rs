//! Admission steps of the create path that need cluster state beyond the
//! object itself (upstream's validating admission plugins).
//!
//! Must not: write objects; a step says yes or no (and may hold a lock the
//! caller keeps until its write is visible).

pub mod quota;
pub mod serviceaccount;
