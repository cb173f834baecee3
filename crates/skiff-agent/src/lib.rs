//! skiff-agent: the node agent (kubelet role) over CRI and containerd. Not yet written; see issue 4.
