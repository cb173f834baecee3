//! The cluster PKI: CA, serving certificate and admin client certificate,
//! created on first start under the data dir and reused later. To be written.
