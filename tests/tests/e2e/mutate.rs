//! Changing objects: `label`, `annotate`, `patch` (strategic, merge, json),
//! `scale`, `edit` (KUBE_EDITOR a sed command) and `delete`.

use skiff_e2e::{Backend, demo_cluster, for_each_backend, json, lines};

fn label_and_annotate(backend: Backend) {
    let (_cluster, k) = demo_cluster(backend);

    let out = k.ok(&["label", "configmap", "web-config", "-n", "demo", "tier=frontend"]);
    assert_eq!(lines(&out), ["configmap/web-config labeled"]);
    assert_eq!(
        lines(&k.ok(&["get", "cm", "-n", "demo", "-l", "tier=frontend", "-o", "name"])),
        ["configmap/web-config"]
    );
    assert_eq!(
        lines(&k.ok(&["get", "cm", "-n", "demo", "-l", "tier!=frontend", "-o", "name"])),
        Vec::<&str>::new()
    );

    let err = k.fails(&["label", "configmap", "web-config", "-n", "demo", "tier=backend"]);
    assert!(
        err.stderr
            .contains("'tier' already has a value (frontend), and --overwrite is false"),
        "{}",
        err.stderr
    );
    k.ok(&[
        "label",
        "configmap",
        "web-config",
        "-n",
        "demo",
        "tier=backend",
        "--overwrite",
    ]);
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "web-config",
            "-n",
            "demo",
            "-o",
            "jsonpath={.metadata.labels.tier}"
        ]),
        "backend"
    );
    k.ok(&["label", "configmap", "web-config", "-n", "demo", "tier-"]);
    assert_eq!(k.ok(&["get", "cm", "-n", "demo", "-l", "tier", "-o", "name"]), "");

    let out = k.ok(&["annotate", "deployment", "web", "-n", "demo", "owner=team-a"]);
    assert_eq!(lines(&out), ["deployment.apps/web annotated"]);
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.metadata.annotations.owner}"
        ]),
        "team-a"
    );
    // Metadata changes do not bump the generation.
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "1"
    );
}

fn patch_all_types(backend: Backend) {
    let (_cluster, k) = demo_cluster(backend);
    let get = |path: &str| {
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "demo",
            "-o",
            &format!("jsonpath={{{path}}}"),
        ])
    };

    // Strategic merge: containers merge by name, the untouched fields stay.
    let patch = r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"busybox:1.37"}]}}}}"#;
    let out = k.ok(&["patch", "deployment", "web", "-n", "demo", "-p", patch]);
    assert_eq!(lines(&out), ["deployment.apps/web patched"]);
    assert_eq!(get(".spec.template.spec.containers[*].image"), "busybox:1.37");
    assert_eq!(get(".spec.template.spec.containers[0].command[0]"), "httpd");
    assert_eq!(
        get(".spec.template.spec.containers[0].ports[0].containerPort"),
        "8080"
    );
    assert_eq!(get(".metadata.generation"), "2");

    // Strategic merge adds a second container rather than replacing the list.
    let patch =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.36"}]}}}}"#;
    k.ok(&[
        "patch",
        "deployment",
        "web",
        "-n",
        "demo",
        "--type",
        "strategic",
        "-p",
        patch,
    ]);
    assert_eq!(get(".spec.template.spec.containers[*].name"), "web sidecar");

    // Merge patch (RFC 7386): maps merge, null deletes.
    let out = k.ok(&[
        "patch",
        "deployment",
        "web",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":"frontend"}}}"#,
    ]);
    assert_eq!(lines(&out), ["deployment.apps/web patched"]);
    assert_eq!(get(".metadata.labels.tier"), "frontend");
    k.ok(&[
        "patch",
        "deployment",
        "web",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":null}}}"#,
    ]);
    assert_eq!(get(".metadata.labels"), r#"{"app":"web"}"#);

    // JSON patch (RFC 6902).
    let patch = r#"[{"op":"replace","path":"/spec/replicas","value":4},{"op":"remove","path":"/spec/template/spec/containers/1"}]"#;
    let out = k.ok(&[
        "patch",
        "deployment",
        "web",
        "-n",
        "demo",
        "--type",
        "json",
        "-p",
        patch,
    ]);
    assert_eq!(lines(&out), ["deployment.apps/web patched"]);
    assert_eq!(get(".spec.replicas"), "4");
    assert_eq!(get(".spec.template.spec.containers[*].name"), "web");

    // A failing test op changes nothing.
    let patch = r#"[{"op":"test","path":"/spec/replicas","value":9},{"op":"replace","path":"/spec/replicas","value":1}]"#;
    k.fails(&[
        "patch",
        "deployment",
        "web",
        "-n",
        "demo",
        "--type",
        "json",
        "-p",
        patch,
    ]);
    assert_eq!(get(".spec.replicas"), "4");

    // A patch that changes nothing says so.
    let out = k.ok(&[
        "patch",
        "deployment",
        "web",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":4}}"#,
    ]);
    assert_eq!(lines(&out), ["deployment.apps/web patched (no change)"]);
}

fn scale_edit_delete(backend: Backend) {
    let (_cluster, k) = demo_cluster(backend);

    let out = k.ok(&["scale", "deployment", "web", "-n", "demo", "--replicas=5"]);
    assert_eq!(lines(&out), ["deployment.apps/web scaled"]);
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "5"
    );
    let scale = json(&k.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/demo/deployments/web/scale",
    ]));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 5);
    // --current-replicas is a precondition.
    k.fails(&[
        "scale",
        "deployment",
        "web",
        "-n",
        "demo",
        "--current-replicas=2",
        "--replicas=1",
    ]);
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "5"
    );

    let editor = k.with_editor("sed -i 's/color: blue/color: purple/'");
    let out = editor.ok(&["edit", "configmap", "web-config", "-n", "demo"]);
    assert_eq!(lines(&out), ["configmap/web-config edited"]);
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "web-config",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.color}"
        ]),
        "purple"
    );
    let editor = k.with_editor("sed -i 's|image: skiff.local/busybox:1|image: busybox:1.37|'");
    let out = editor.ok(&["edit", "deployment/web", "-n", "demo"]);
    assert_eq!(lines(&out), ["deployment.apps/web edited"]);
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "busybox:1.37"
    );
    // An edit that changes nothing is cancelled.
    let noop = k.with_editor("true");
    let out = noop
        .run(&["edit", "configmap", "web-config", "-n", "demo"])
        .unwrap();
    assert!(out.stderr.contains("Edit cancelled, no changes made."), "{out:?}");

    let out = k.ok(&["delete", "configmap", "web-config", "-n", "demo"]);
    assert!(out.starts_with("configmap \"web-config\" deleted"), "{out}");
    let err = k.fails(&["get", "configmap", "web-config", "-n", "demo"]);
    assert_eq!(
        lines(&err.stderr),
        ["Error from server (NotFound): configmaps \"web-config\" not found"]
    );
    let out = k.ok(&["delete", "deployment/web", "service/web", "-n", "demo"]);
    assert!(out.starts_with("deployment.apps \"web\" deleted"), "{out}");
    assert!(out.contains("service \"web\" deleted"), "{out}");
    assert_eq!(k.ok(&["get", "deploy,svc", "-n", "demo", "-o", "name"]), "");
    let out = k.ok(&["delete", "secret", "-n", "demo", "-l", "app=web"]);
    assert!(out.starts_with("secret \"web-secret\" deleted"), "{out}");
    let err = k.fails(&["delete", "configmap", "web-config", "-n", "demo"]);
    assert!(err.stderr.contains("(NotFound)"), "{}", err.stderr);

    // Deleting a namespace takes what is in it along.
    k.ok(&["create", "configmap", "inside", "-n", "demo"]);
    let out = k.ok(&["delete", "namespace", "demo"]);
    assert!(out.starts_with("namespace \"demo\" deleted"), "{out}");
    k.fails(&["get", "namespace", "demo"]);
    k.ok(&["create", "namespace", "demo"]);
    assert_eq!(k.ok(&["get", "configmaps", "-n", "demo", "-o", "name"]), "");
}

for_each_backend!(label_and_annotate, patch_all_types, scale_edit_delete);
