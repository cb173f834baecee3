//! skiff-dns: cluster DNS served from Services and EndpointSlices. Not yet written; see issue 5.
