//! Python's official `kubernetes` client against skiff: list namespaces,
//! create and read a configmap, and watch it change (tests/python/client_check.py).
//!
//! Needs `pip install kubernetes`; scripts/test.sh installs it and sets
//! `SKIFF_E2E_REQUIRE_PYTHON=1` so a missing client fails there. Run by hand
//! without it, the test says it was skipped and passes.

use std::process::Command;

use skiff_e2e::{Backend, Cluster, for_each_backend};

fn python() -> String {
    std::env::var("SKIFF_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn client_installed() -> bool {
    Command::new(python())
        .args(["-c", "import kubernetes"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn python_client(backend: Backend) {
    if !client_installed() {
        assert!(
            std::env::var_os("SKIFF_E2E_REQUIRE_PYTHON").is_none(),
            "Python's kubernetes client is not installed (pip install kubernetes)"
        );
        eprintln!("skipped: Python's kubernetes client is not installed (pip install kubernetes)");
        return;
    }
    let cluster = Cluster::start(backend);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/client_check.py");
    let out = Command::new(python())
        .arg(script)
        .env("KUBECONFIG", cluster.server.kubeconfig())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "client_check.py failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("python kubernetes client: ok"), "{stdout}");
}

for_each_backend!(python_client);
