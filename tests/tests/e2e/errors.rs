//! What users see when the server says no: Invalid (422) with field causes,
//! strict field validation, NotFound, AlreadyExists, Conflict; nothing stored.

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

fn server_errors(backend: Backend) {
    let cluster = Cluster::start(backend);
    let k = cluster.kubectl();

    let err = k.fails_stdin(&["create", "-f", "-"], Some(BAD_NAME));
    assert!(err.stderr.contains("\"Bad_Name\" is invalid"), "{}", err.stderr);
    assert!(
        err.stderr.contains(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower \
             case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ),
        "{}",
        err.stderr
    );

    let err = k.fails_stdin(&["apply", "--validate=strict", "-f", "-"], Some(UNKNOWN_FIELD));
    assert!(err.stderr.contains("unknown field \"bogus\""), "{}", err.stderr);
    let ignored = k.ok_stdin(&["create", "--validate=ignore", "-f", "-"], Some(UNKNOWN_FIELD));
    assert_eq!(lines(&ignored), ["configmap/strict created"]);

    let err = k.fails(&["get", "configmap", "missing"]);
    assert_eq!(
        lines(&err.stderr),
        ["Error from server (NotFound): configmaps \"missing\" not found"]
    );
    let err = k.fails(&["get", "deployment", "missing", "-n", "nowhere"]);
    assert_eq!(
        lines(&err.stderr),
        ["Error from server (NotFound): deployments.apps \"missing\" not found"]
    );
    let err = k.fails(&["create", "configmap", "x", "-n", "nowhere"]);
    assert!(
        err.stderr.contains("namespaces \"nowhere\" not found"),
        "{}",
        err.stderr
    );

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
    assert!(
        err.stderr.contains(
            "Operation cannot be fulfilled on configmaps \"dup\": the object has been modified; please apply \
             your changes to the latest version and try again"
        ),
        "{}",
        err.stderr
    );

    // Nothing invalid was stored.
    let names = k.ok(&[
        "get",
        "configmaps",
        "-A",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    let mut names: Vec<&str> = names
        .split_whitespace()
        .filter(|n| *n != "kube-root-ca.crt")
        .collect();
    names.sort();
    assert_eq!(names, ["dup", "strict"]);
}

for_each_backend!(server_errors);
