//! skiff-controllers: reconcile loops keeping declared state (ReplicaSet, Deployment, ...). Not yet written; see issue 3.
