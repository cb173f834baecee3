//! A throw-away etcd server on loopback ports (Debian etcd-server). To be written.
