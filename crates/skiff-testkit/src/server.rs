//! A `skiff server` process on free loopback ports with its own data dir. To be written.
