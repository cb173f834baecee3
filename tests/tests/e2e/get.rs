//! Reading: `kubectl get` in every output format, `describe`, `explain`,
//! `api-resources` and `version`.

use skiff_e2e::{Backend, Cluster, demo_cluster, for_each_backend, json, lines, row, squeeze};

fn get_output_formats(backend: Backend) {
    let (_cluster, k) = demo_cluster(backend);

    // Tables as the server renders them (as=Table), with upstream's columns.
    let table = k.ok(&["get", "deployments", "-n", "demo", "-o", "wide"]);
    assert_eq!(
        squeeze(&table)[0],
        "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR"
    );
    let web = row(&table, "web");
    assert!(web.starts_with("web 0/2 0 0 "), "row: {web}");
    assert!(web.ends_with(" web skiff.local/busybox:1 app=web"), "row: {web}");

    let table = k.ok(&["get", "services", "-n", "demo", "-o", "wide"]);
    assert_eq!(
        squeeze(&table)[0],
        "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR"
    );
    let svc: Vec<String> = row(&table, "web").split(' ').map(str::to_string).collect();
    assert_eq!(&svc[..2], ["web", "ClusterIP"]);
    assert!(
        svc[2].starts_with("10.43."),
        "cluster IP from the default service CIDR: {svc:?}"
    );
    assert_eq!(&svc[3..5], ["<none>", "80/TCP"]);
    assert_eq!(svc[6], "app=web");

    let table = k.ok(&["get", "configmaps", "-n", "demo"]);
    assert_eq!(squeeze(&table)[0], "NAME DATA AGE");
    assert!(row(&table, "web-config").starts_with("web-config 2 "));
    let table = k.ok(&["get", "secrets", "-n", "demo"]);
    assert_eq!(squeeze(&table)[0], "NAME TYPE DATA AGE");
    assert!(row(&table, "web-secret").starts_with("web-secret Opaque 1 "));
    let table = k.ok(&["get", "namespaces"]);
    assert_eq!(squeeze(&table)[0], "NAME STATUS AGE");
    assert!(row(&table, "demo").starts_with("demo Active "));
    assert!(row(&table, "default").starts_with("default Active "));

    // -o yaml and -o json: the stored object with server-set metadata and defaults.
    let yaml = k.ok(&["get", "deployment", "web", "-n", "demo", "-o", "yaml"]);
    for want in [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "  name: web",
        "  replicas: 2",
        "uid: ",
    ] {
        assert!(yaml.contains(want), "{want:?} not in:\n{yaml}");
    }
    let obj = json(&k.ok(&["get", "deployment", "web", "-n", "demo", "-o", "json"]));
    assert_eq!(obj["kind"], "Deployment");
    assert!(obj["metadata"]["uid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(
        obj["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(obj["metadata"]["creationTimestamp"].is_string());
    assert_eq!(obj["metadata"]["generation"], 1);
    assert_eq!(obj["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(obj["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(obj["spec"]["progressDeadlineSeconds"], 600);
    let container = &obj["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(container["ports"][0]["protocol"], "TCP");
    assert_eq!(obj["spec"]["template"]["spec"]["restartPolicy"], "Always");
    let list = json(&k.ok(&["get", "configmaps,secrets", "-n", "demo", "-o", "json"]));
    assert_eq!(list["kind"], "List");

    // jsonpath and custom-columns.
    let image = [
        "get",
        "deploy",
        "web",
        "-n",
        "demo",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ];
    assert_eq!(k.ok(&image), "skiff.local/busybox:1");
    let names = k.ok(&[
        "get",
        "cm,secret",
        "-n",
        "demo",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(names, "web-config web-secret");
    let columns = "custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas,IMAGE:.spec.template.spec.containers[0].image";
    let table = k.ok(&["get", "deploy", "-n", "demo", "-o", columns]);
    assert_eq!(
        squeeze(&table),
        ["NAME REPLICAS IMAGE", "web 2 skiff.local/busybox:1"]
    );

    // -o name, label selectors, and `get all`.
    assert_eq!(
        lines(&k.ok(&["get", "cm", "-n", "demo", "-l", "app=web", "-o", "name"])),
        ["configmap/web-config"]
    );
    assert_eq!(
        k.ok(&["get", "cm", "-n", "demo", "-l", "app=nope", "-o", "name"]),
        ""
    );
    let all = k.ok(&["get", "all", "-n", "demo"]);
    assert!(all.contains("service/web "), "{all}");
    assert!(all.contains("deployment.apps/web "), "{all}");
}

fn describe_objects(backend: Backend) {
    let (_cluster, k) = demo_cluster(backend);

    let out = squeeze(&k.ok(&["describe", "deployment", "web", "-n", "demo"]));
    for want in [
        "Name: web",
        "Namespace: demo",
        "Labels: app=web",
        "Selector: app=web",
        "Replicas: 2 desired | 0 updated | 0 total | 0 available | 0 unavailable",
        "StrategyType: RollingUpdate",
        "RollingUpdateStrategy: 25% max unavailable, 25% max surge",
        "Image: skiff.local/busybox:1",
    ] {
        assert!(
            out.iter().any(|l| l == want),
            "{want:?} not in:\n{}",
            out.join("\n")
        );
    }

    let out = squeeze(&k.ok(&["describe", "configmap", "web-config", "-n", "demo"]));
    for want in ["Name: web-config", "Namespace: demo", "color:", "blue"] {
        assert!(
            out.iter().any(|l| l == want),
            "{want:?} not in:\n{}",
            out.join("\n")
        );
    }

    let out = squeeze(&k.ok(&["describe", "service", "web", "-n", "demo"]));
    for want in [
        "Name: web",
        "Type: ClusterIP",
        "Port: http 80/TCP",
        "TargetPort: 8080/TCP",
    ] {
        assert!(
            out.iter().any(|l| l == want),
            "{want:?} not in:\n{}",
            out.join("\n")
        );
    }

    let out = squeeze(&k.ok(&["describe", "namespace", "demo"]));
    assert!(out.iter().any(|l| l == "Status: Active"), "{}", out.join("\n"));
}

fn discovery_explain_version(backend: Backend) {
    let cluster = Cluster::start(backend);
    let k = cluster.kubectl();

    let table = squeeze(&k.ok(&["api-resources"]));
    assert_eq!(table[0], "NAME SHORTNAMES APIVERSION NAMESPACED KIND");
    for want in [
        "configmaps cm v1 true ConfigMap",
        "endpoints ep v1 true Endpoints",
        "events ev v1 true Event",
        "namespaces ns v1 false Namespace",
        "nodes no v1 false Node",
        "persistentvolumeclaims pvc v1 true PersistentVolumeClaim",
        "pods po v1 true Pod",
        "secrets v1 true Secret",
        "serviceaccounts sa v1 true ServiceAccount",
        "services svc v1 true Service",
        "daemonsets ds apps/v1 true DaemonSet",
        "deployments deploy apps/v1 true Deployment",
        "replicasets rs apps/v1 true ReplicaSet",
        "statefulsets sts apps/v1 true StatefulSet",
        "horizontalpodautoscalers hpa autoscaling/v2 true HorizontalPodAutoscaler",
        "cronjobs cj batch/v1 true CronJob",
        "jobs batch/v1 true Job",
        "leases coordination.k8s.io/v1 true Lease",
        "endpointslices discovery.k8s.io/v1 true EndpointSlice",
        "events ev events.k8s.io/v1 true Event",
        "poddisruptionbudgets pdb policy/v1 true PodDisruptionBudget",
        "clusterroles rbac.authorization.k8s.io/v1 false ClusterRole",
        "priorityclasses pc scheduling.k8s.io/v1 false PriorityClass",
        "storageclasses sc storage.k8s.io/v1 false StorageClass",
    ] {
        assert!(
            table.iter().any(|l| l == want),
            "{want:?} not in:\n{}",
            table.join("\n")
        );
    }
    let cluster_scoped = lines(&k.ok(&["api-resources", "--namespaced=false", "-o", "name"]))
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert!(
        cluster_scoped.contains(&"namespaces".to_string()),
        "{cluster_scoped:?}"
    );
    assert!(
        !cluster_scoped.contains(&"pods".to_string()),
        "{cluster_scoped:?}"
    );

    let out = squeeze(&k.ok(&["explain", "deployment.spec.replicas"]));
    for want in [
        "GROUP: apps",
        "KIND: Deployment",
        "VERSION: v1",
        "FIELD: replicas <integer>",
        "DESCRIPTION:",
    ] {
        assert!(
            out.iter().any(|l| l == want),
            "{want:?} not in:\n{}",
            out.join("\n")
        );
    }
    let out = squeeze(&k.ok(&["explain", "pods.spec.containers"]));
    assert!(
        out.iter().any(|l| l == "FIELD: containers <[]Container>"),
        "{}",
        out.join("\n")
    );
    assert!(
        out.iter().any(|l| l.starts_with("image <string>")),
        "{}",
        out.join("\n")
    );

    let version = k.ok(&["version"]);
    assert!(version.contains("Server Version: v1."), "{version}");
}

fn list_selectors_and_paging(backend: Backend) {
    let cluster = Cluster::start(backend);
    let k = cluster.kubectl();
    for (name, tier) in [
        ("a", "web"),
        ("b", "api"),
        ("c", "web"),
        ("d", "db"),
        ("e", "web"),
    ] {
        k.ok(&["create", "configmap", name]);
        k.ok(&["label", "configmap", name, &format!("tier={tier}")]);
    }
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["get", "configmaps", "-o", "name"];
        all.extend_from_slice(args);
        lines(&k.ok(&all))
            .into_iter()
            .map(|l| l.trim_start_matches("configmap/").to_string())
            .collect()
    };

    assert_eq!(names(&["-l", "tier=web"]), ["a", "c", "e"]);
    assert_eq!(names(&["-l", "tier in (api,db)"]), ["b", "d"]);
    assert_eq!(names(&["-l", "tier notin (web),tier"]), ["b", "d"]);
    assert_eq!(names(&["-l", "tier!=web"]), ["b", "d"]);
    assert_eq!(names(&["--field-selector", "metadata.name=c"]), ["c"]);
    assert_eq!(
        names(&["--field-selector", "metadata.name!=c", "-l", "tier=web"]),
        ["a", "e"]
    );
    let err = k.fails(&["get", "configmaps", "--field-selector", "data.x=y"]);
    assert!(
        err.stderr.contains("field label not supported: data.x"),
        "{}",
        err.stderr
    );

    // kubectl pages with limit/continue; every object comes back once, in order.
    assert_eq!(names(&["--chunk-size=2"]), ["a", "b", "c", "d", "e"]);
    let page = json(&k.ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps?limit=2"]));
    assert_eq!(page["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(page["metadata"]["remainingItemCount"], 3);
    let token = page["metadata"]["continue"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!token.is_empty(), "no continue token: {page}");
}

for_each_backend!(
    get_output_formats,
    describe_objects,
    discovery_explain_version,
    list_selectors_and_paging
);
