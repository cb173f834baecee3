//! Runs the real kubectl against a kubeconfig and captures its output. To be written.
