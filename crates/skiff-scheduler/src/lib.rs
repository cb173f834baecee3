//! skiff-scheduler: places pending pods on nodes (plugin framework). Not yet written; see issue 3.
