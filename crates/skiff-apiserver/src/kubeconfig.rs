//! Writes kubeconfig files (the admin kubeconfig kubectl uses as is). To be written.
