//! What users see when the server says no: Invalid (422) with field causes,
//! strict field validation, an oversized body, NotFound, AlreadyExists,
//! Conflict; and nothing is stored by a rejected request.

use skiff_e2e::{Backend, Cluster, for_each_backend, lines};

const BAD_NAME: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: Bad_Name
data:
  a: b
";

const UNKNOWN_FIELD: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: strict
data:
  a: b
bogus: 1
";

const DUPLICATE: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: dup
";

/// The configmap names stored in every namespace, sorted, without the server's own.
fn stored_configmaps(k: &skiff_testkit::kubectl::Kubectl) -> Vec<String> {
    let names = k.ok(&[
        "get",
        "configmaps",
        "-A",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    let mut names: Vec<String> = names
        .split_whitespace()
        // The server's own: the CA in every namespace, and kube-public/cluster-info for joining nodes.
        .filter(|n| *n != "kube-root-ca.crt" && *n != "cluster-info")
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

fn invalid_input_is_rejected(backend: Backend) {
    let cluster = Cluster::start(backend);
    let k = cluster.kubectl();

    let err = k.fails_stdin(&["create", "-f", "-"], Some(BAD_NAME));
    assert!(err.stderr.contains("\"Bad_Name\" is invalid"), "{}", err.stderr);
    let message = "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist \
                   of lower case alphanumeric characters, '-' or '.', and must start and end with an \
                   alphanumeric character";
    assert!(err.stderr.contains(message), "{}", err.stderr);

    let err = k.fails_stdin(&["apply", "--validate=strict", "-f", "-"], Some(UNKNOWN_FIELD));
    assert!(err.stderr.contains("unknown field \"bogus\""), "{}", err.stderr);
    assert_eq!(
        stored_configmaps(&k),
        Vec::<String>::new(),
        "a rejected request stored something"
    );

    let ignored = k.ok_stdin(&["create", "--validate=ignore", "-f", "-"], Some(UNKNOWN_FIELD));
    assert_eq!(lines(&ignored), ["configmap/strict created"]);
    assert_eq!(stored_configmaps(&k), ["strict"]);

    // Request bodies over 3 MiB are refused before they are decoded.
    let big = cluster.server.data_dir().join("big.txt");
    std::fs::write(&big, "x".repeat(3 * 1024 * 1024 + 512 * 1024)).unwrap();
    let from_file = format!("--from-file=big={}", big.display());
    let err = k.fails(&["create", "configmap", "huge", &from_file]);
    assert!(
        err.stderr.contains("Request entity too large: limit is 3145728"),
        "{}",
        err.stderr
    );
    assert_eq!(stored_configmaps(&k), ["strict"]);
}

fn not_found(backend: Backend) {
    let cluster = Cluster::start(backend);
    let k = cluster.kubectl();

    let err = k.fails(&["get", "configmap", "missing"]);
    assert_eq!(
        lines(&err.stderr),
        ["Error from server (NotFound): configmaps \"missing\" not found"]
    );
    let err = k.fails(&["delete", "configmap", "missing"]);
    assert_eq!(
        lines(&err.stderr),
        ["Error from server (NotFound): configmaps \"missing\" not found"]
    );
    let err = k.fails(&["create", "configmap", "x", "-n", "nowhere"]);
    assert!(
        err.stderr.contains("namespaces \"nowhere\" not found"),
        "{}",
        err.stderr
    );
    // The server answers a read in a missing namespace with the object's
    // NotFound (admission guards writes only); kubectl 1.33+ then looks the
    // namespace up and names it instead.
    let raw = k.fails(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/nowhere/deployments/missing",
    ]);
    assert_eq!(
        lines(&raw.stderr),
        ["Error from server (NotFound): deployments.apps \"missing\" not found"]
    );
    let err = k.fails(&["get", "deployment", "missing", "-n", "nowhere"]);
    assert!(
        err.stderr.starts_with("Error from server (NotFound): "),
        "{}",
        err.stderr
    );
}

fn already_exists_and_conflict(backend: Backend) {
    let cluster = Cluster::start(backend);
    let k = cluster.kubectl();

    k.ok_stdin(&["create", "-f", "-"], Some(DUPLICATE));
    let err = k.fails_stdin(&["create", "-f", "-"], Some(DUPLICATE));
    assert!(
        err.stderr.contains("Error from server (AlreadyExists)"),
        "{}",
        err.stderr
    );
    assert!(
        err.stderr.contains("configmaps \"dup\" already exists"),
        "{}",
        err.stderr
    );

    // A replace with a stale resourceVersion is a conflict.
    let stale = k.ok(&["get", "configmap", "dup", "-o", "yaml"]);
    k.ok(&["label", "configmap", "dup", "bump=1"]);
    let err = k.fails_stdin(&["replace", "-f", "-"], Some(&stale));
    assert!(
        err.stderr.contains("Error from server (Conflict)"),
        "{}",
        err.stderr
    );
    let message = "Operation cannot be fulfilled on configmaps \"dup\": the object has been modified; please \
                   apply your changes to the latest version and try again";
    assert!(err.stderr.contains(message), "{}", err.stderr);
    assert_eq!(
        k.ok(&[
            "get",
            "configmap",
            "dup",
            "-o",
            "jsonpath={.metadata.labels.bump}"
        ]),
        "1"
    );
    assert_eq!(stored_configmaps(&k), ["dup"]);
}

for_each_backend!(invalid_input_is_rejected, not_found, already_exists_and_conflict);
