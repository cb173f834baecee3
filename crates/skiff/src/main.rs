//! The `skiff` binary: parses flags and wires the libraries together.
fn main() {}
