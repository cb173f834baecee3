//! Imperative creation: `kubectl create namespace|configmap|secret generic|deployment`
//! and server-side dry runs that store nothing.

use skiff_e2e::{Backend, Cluster, for_each_backend, json, lines};

fn create_imperative(backend: Backend) {
    let cluster = Cluster::start(backend);
    let k = cluster.kubectl();

    assert_eq!(
        lines(&k.ok(&["create", "namespace", "shop"])),
        ["namespace/shop created"]
    );
    let out = k.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "shop",
        "--from-literal=mode=fast",
        "--from-literal=level=3",
    ]);
    assert_eq!(lines(&out), ["configmap/settings created"]);
    let cm = json(&k.ok(&["get", "cm", "settings", "-n", "shop", "-o", "json"]));
    assert_eq!(cm["data"], serde_json::json!({"level": "3", "mode": "fast"}));

    let out = k.ok(&[
        "create",
        "secret",
        "generic",
        "db",
        "-n",
        "shop",
        "--from-literal=password=hunter2",
    ]);
    assert_eq!(lines(&out), ["secret/db created"]);
    let secret = json(&k.ok(&["get", "secret", "db", "-n", "shop", "-o", "json"]));
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");

    let out = k.ok(&[
        "create",
        "deployment",
        "api",
        "-n",
        "shop",
        "--image=busybox:1.36",
        "--replicas=2",
    ]);
    assert_eq!(lines(&out), ["deployment.apps/api created"]);
    let deploy = json(&k.ok(&["get", "deployment", "api", "-n", "shop", "-o", "json"]));
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(deploy["spec"]["selector"]["matchLabels"]["app"], "api");
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox:1.36"
    );

    // Objects without a namespace land in the context's namespace, "default".
    k.ok(&["create", "configmap", "plain", "--from-literal=a=b"]);
    assert_eq!(
        lines(&k.ok(&["get", "cm", "plain", "-n", "default", "-o", "name"])),
        ["configmap/plain"]
    );
    let names = k.ok(&[
        "get",
        "cm",
        "-A",
        "-o",
        "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}",
    ]);
    assert!(
        names.contains("shop/settings ") && names.contains("default/plain "),
        "{names}"
    );
}

fn dry_run_server(backend: Backend) {
    let cluster = Cluster::start(backend);
    let k = cluster.kubectl();

    let out = k.ok(&[
        "create",
        "configmap",
        "dry",
        "--from-literal=a=b",
        "--dry-run=server",
    ]);
    assert_eq!(lines(&out), ["configmap/dry created (server dry run)"]);
    let err = k.fails(&["get", "configmap", "dry"]);
    assert_eq!(
        lines(&err.stderr),
        ["Error from server (NotFound): configmaps \"dry\" not found"]
    );

    // The server fills in what it would have stored.
    let obj = json(&k.ok(&[
        "create",
        "deployment",
        "d",
        "--image=busybox:1.36",
        "--dry-run=server",
        "-o",
        "json",
    ]));
    assert_eq!(obj["spec"]["strategy"]["type"], "RollingUpdate");
    assert!(obj["metadata"]["uid"].is_string(), "{obj}");
    assert_eq!(k.ok(&["get", "deployments", "-o", "name"]), "");

    k.ok(&["create", "configmap", "keep", "--from-literal=a=b"]);
    let out = k.ok(&["label", "configmap", "keep", "x=y", "--dry-run=server"]);
    assert_eq!(lines(&out), ["configmap/keep labeled (server dry run)"]);
    let out = k.ok(&["delete", "configmap", "keep", "--dry-run=server"]);
    assert!(
        out.starts_with("configmap \"keep\" deleted") && out.contains("(server dry run)"),
        "{out}"
    );
    let kept = json(&k.ok(&["get", "configmap", "keep", "-o", "json"]));
    assert_eq!(kept["metadata"].get("labels"), None);
}

for_each_backend!(create_imperative, dry_run_server);
