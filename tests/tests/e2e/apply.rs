//! `kubectl apply`: client-side apply of a multi-document file (created,
//! unchanged, configured) and server-side apply with field-manager conflicts.

use skiff_e2e::{Backend, Cluster, DEMO_MANIFEST, for_each_backend, json, lines};

fn apply_created_unchanged_configured(backend: Backend) {
    let cluster = Cluster::start(backend);
    let k = cluster.kubectl();

    let first = k.ok_stdin(&["apply", "-f", "-"], Some(DEMO_MANIFEST));
    assert_eq!(
        lines(&first),
        [
            "namespace/demo created",
            "configmap/web-config created",
            "secret/web-secret created",
            "deployment.apps/web created",
            "service/web created",
        ]
    );

    let second = k.ok_stdin(&["apply", "-f", "-"], Some(DEMO_MANIFEST));
    assert_eq!(
        lines(&second),
        [
            "namespace/demo unchanged",
            "configmap/web-config unchanged",
            "secret/web-secret unchanged",
            "deployment.apps/web unchanged",
            "service/web unchanged",
        ]
    );

    let changed = DEMO_MANIFEST
        .replace("color: blue", "color: green")
        .replace("replicas: 2", "replicas: 3");
    let third = k.ok_stdin(&["apply", "-f", "-"], Some(&changed));
    assert_eq!(
        lines(&third),
        [
            "namespace/demo unchanged",
            "configmap/web-config configured",
            "secret/web-secret unchanged",
            "deployment.apps/web configured",
            "service/web unchanged",
        ]
    );
    assert_eq!(
        k.ok(&[
            "get",
            "configmap",
            "web-config",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.color}"
        ]),
        "green"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deployment",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "3"
    );
    // Only a spec change bumps the generation.
    assert_eq!(
        k.ok(&[
            "get",
            "deployment",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "2"
    );
    // kubectl keeps what it applied in the last-applied annotation.
    let last = k.ok(&[
        "get",
        "configmap",
        "web-config",
        "-n",
        "demo",
        "-o",
        "jsonpath={.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
    ]);
    assert_eq!(json(&last)["data"]["color"], "green");
}

const SSA_CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
  namespace: default
data:
  a: \"1\"
";

fn apply_server_side(backend: Backend) {
    let cluster = Cluster::start(backend);
    let k = cluster.kubectl();

    let out = k.ok_stdin(&["apply", "--server-side", "-f", "-"], Some(SSA_CONFIGMAP));
    assert_eq!(lines(&out), ["configmap/ssa serverside-applied"]);
    let out = k.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        Some(&SSA_CONFIGMAP.replace("\"1\"", "\"2\"")),
    );
    assert_eq!(lines(&out), ["configmap/ssa serverside-applied"]);
    assert_eq!(k.ok(&["get", "cm", "ssa", "-o", "jsonpath={.data.a}"]), "2");

    let obj = json(&k.ok(&["get", "cm", "ssa", "-o", "json", "--show-managed-fields"]));
    let managers = obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        managers
            .iter()
            .any(|m| m["manager"] == "kubectl" && m["operation"] == "Apply"),
        "no Apply entry for manager kubectl in {managers:?}"
    );

    // Another manager changing a field kubectl owns is a conflict...
    let other = SSA_CONFIGMAP.replace("\"1\"", "\"3\"");
    let err = k.fails_stdin(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        Some(&other),
    );
    assert!(
        err.stderr.contains("Apply failed with 1 conflict"),
        "stderr: {}",
        err.stderr
    );
    assert!(
        err.stderr.contains("conflict with \"kubectl\""),
        "stderr: {}",
        err.stderr
    );
    assert!(err.stderr.contains(".data.a"), "stderr: {}", err.stderr);
    assert_eq!(k.ok(&["get", "cm", "ssa", "-o", "jsonpath={.data.a}"]), "2");

    // ...unless it forces them.
    let out = k.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&other),
    );
    assert_eq!(lines(&out), ["configmap/ssa serverside-applied"]);
    assert_eq!(k.ok(&["get", "cm", "ssa", "-o", "jsonpath={.data.a}"]), "3");
}

for_each_backend!(apply_created_unchanged_configured, apply_server_side);
