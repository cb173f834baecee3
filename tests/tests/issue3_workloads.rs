//! Issue 3 e2e "Must show": real kubectl against `skiff server` (which runs
//! the scheduler and controllers) with `skiff simulate-nodes` as the nodes.
//! These pass only once the scheduler and controllers run inside the server.

#![allow(clippy::unwrap_used)]

mod issue3_common;

use std::time::Duration;

use issue3_common::{SimCluster, pods, wait_for, wait_ready_pods};

const T: Duration = Duration::from_secs(60);

#[test]
fn deployment_scales_replaces_rolls_out_and_is_collected() {
    let c = SimCluster::start(3, &[]);
    let k = c.kubectl();
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=10",
    ]);
    let ready = wait_ready_pods(&k, "default", "app=web", 10, T);
    assert!(ready.iter().all(|p| {
        p["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| n.starts_with("sim-"))
    }));

    k.ok(&["scale", "deployment", "web", "--replicas=12"]);
    wait_ready_pods(&k, "default", "app=web", 12, T);
    k.ok(&["scale", "deployment", "web", "--replicas=4"]);
    let four = wait_ready_pods(&k, "default", "app=web", 4, T);

    let victim = four[0]["metadata"]["name"].as_str().unwrap().to_string();
    k.ok(&["delete", "pod", &victim]);
    let after = wait_ready_pods(&k, "default", "app=web", 4, T);
    assert!(after.iter().all(|p| p["metadata"]["name"] != victim.as_str()));

    // Rolling update: default maxUnavailable 25% of 4 = 1, so >= 3 ready throughout.
    k.ok(&["set", "image", "deployment/web", "nginx=nginx:1.26"]);
    let mut min_ready = usize::MAX;
    wait_for(T, "rollout to nginx:1.26", || {
        let p = pods(&k, "default", "app=web");
        min_ready = min_ready.min(p.iter().filter(|p| issue3_common::is_ready(p)).count());
        let done = p.len() == 4
            && p.iter()
                .all(|p| issue3_common::is_ready(p) && p["spec"]["containers"][0]["image"] == "nginx:1.26");
        done.then_some(())
    });
    assert!(
        min_ready >= 3,
        "ready pods dropped to {min_ready} during the rollout"
    );
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);

    k.ok(&["rollout", "undo", "deployment/web"]);
    wait_for(T, "undo to nginx:1.25", || {
        let p = pods(&k, "default", "app=web");
        (p.len() == 4
            && p.iter()
                .all(|p| issue3_common::is_ready(p) && p["spec"]["containers"][0]["image"] == "nginx:1.25"))
        .then_some(())
    });

    k.ok(&["delete", "deployment", "web"]);
    wait_for(T, "replicasets and pods collected", || {
        let rs = k.ok(&["get", "rs", "-l", "app=web", "-o", "name"]);
        (rs.trim().is_empty() && pods(&k, "default", "app=web").is_empty()).then_some(())
    });
}

#[test]
fn job_completes_and_cronjob_creates_jobs() {
    let c = SimCluster::start(2, &[]);
    let k = c.kubectl();
    k.ok(&["create", "job", "once", "--image=busybox", "--", "true"]);
    k.ok(&["wait", "--for=condition=Complete", "job/once", "--timeout=60s"]);
    assert_eq!(
        k.ok(&["get", "job", "once", "-o", "jsonpath={.status.succeeded}"]),
        "1"
    );
    let table = k.ok(&["get", "job", "once", "--no-headers"]);
    assert!(table.contains("1/1"), "COMPLETIONS column: {table}");

    // Three completions two at a time; a Job whose TTL is 0 is deleted once done.
    let batch = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"batch"},"spec":{"completions":3,"parallelism":2,"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"w","image":"busybox"}]}}}}"#;
    let ttl = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"brief"},"spec":{"ttlSecondsAfterFinished":0,"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"w","image":"busybox"}]}}}}"#;
    k.ok_stdin(&["apply", "-f", "-"], Some(batch));
    k.ok_stdin(&["apply", "-f", "-"], Some(ttl));
    k.ok(&["wait", "--for=condition=Complete", "job/batch", "--timeout=60s"]);
    assert_eq!(
        k.ok(&["get", "job", "batch", "-o", "jsonpath={.status.succeeded}"]),
        "3"
    );
    let done = pods(&k, "default", "batch.kubernetes.io/job-name=batch");
    assert_eq!(done.len(), 3);
    assert!(
        done.iter()
            .all(|p| p["metadata"]["ownerReferences"][0]["kind"] == "Job")
    );
    wait_for(T, "the Job with ttlSecondsAfterFinished=0 deleted", || {
        let out = k.ok(&["get", "jobs", "-o", "name"]);
        (!out.contains("job.batch/brief")).then_some(())
    });

    k.ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=* * * * *",
        "--",
        "true",
    ]);
    let name = wait_for(Duration::from_secs(75), "a Job created by the CronJob", || {
        let out = k.ok(&[
            "get",
            "jobs",
            "-o",
            r#"jsonpath={range .items[?(@.metadata.ownerReferences[0].name=="tick")]}{.metadata.name}{"\n"}{end}"#,
        ]);
        out.lines().next().map(str::to_string)
    });
    let minutes = name.strip_prefix("tick-").expect("job named <cronjob>-<minutes>");
    assert!(minutes.parse::<u64>().is_ok(), "job name {name}");
    wait_for(T, "the CronJob's lastScheduleTime", || {
        let t = k.ok(&[
            "get",
            "cronjob",
            "tick",
            "-o",
            "jsonpath={.status.lastScheduleTime}",
        ]);
        (!t.trim().is_empty()).then_some(())
    });
}

#[test]
fn daemonset_and_statefulset() {
    let mut c = SimCluster::start(3, &["--label", "role=worker"]);
    c.add_nodes(&[
        "--count",
        "1",
        "--name-prefix",
        "tainted-",
        "--label",
        "role=worker",
        "--taint",
        "dedicated=db:NoSchedule",
    ]);
    c.add_nodes(&["--count", "1", "--name-prefix", "other-"]);
    c.wait_ready_nodes(5);
    let k = c.kubectl();
    let ds = r#"{"apiVersion":"apps/v1","kind":"DaemonSet","metadata":{"name":"agent"},"spec":{"selector":{"matchLabels":{"app":"agent"}},"template":{"metadata":{"labels":{"app":"agent"}},"spec":{"nodeSelector":{"role":"worker"},"containers":[{"name":"a","image":"busybox:1"}]}}}}"#;
    k.ok_stdin(&["apply", "-f", "-"], Some(ds));
    let p = wait_ready_pods(&k, "default", "app=agent", 3, T);
    let mut nodes: Vec<&str> = p
        .iter()
        .map(|p| p["spec"]["nodeName"].as_str().unwrap())
        .collect();
    nodes.sort();
    assert_eq!(
        nodes,
        ["sim-0", "sim-1", "sim-2"],
        "one pod per matching, untainted node"
    );
    for pod in &p {
        assert_eq!(pod["metadata"]["labels"]["pod-template-generation"], "1");
        assert!(pod["metadata"]["labels"]["controller-revision-hash"].is_string());
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
        let pinned = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"][0]["matchFields"][0];
        assert_eq!(
            pinned["values"][0], pod["spec"]["nodeName"],
            "placed by metadata.name affinity"
        );
        assert!(
            pod["spec"]["tolerations"]
                .to_string()
                .contains("node.kubernetes.io/unschedulable")
        );
    }
    wait_for(T, "daemonset status", || {
        let st = k.ok(&[
            "get",
            "ds",
            "agent",
            "-o",
            "jsonpath={.status.desiredNumberScheduled} {.status.numberReady} {.status.updatedNumberScheduled}",
        ]);
        (st == "3 3 3").then_some(())
    });

    // A new matching node gets its daemon pod.
    c.add_nodes(&["--count", "1", "--name-prefix", "late-", "--label", "role=worker"]);
    let p = wait_ready_pods(&k, "default", "app=agent", 4, T);
    assert!(p.iter().any(|p| p["spec"]["nodeName"] == "late-0"));

    // Rolling update, history and undo.
    k.ok(&["set", "image", "ds/agent", "a=busybox:2"]);
    let images = |k: &skiff_testkit::kubectl::Kubectl| {
        let p = pods(k, "default", "app=agent");
        let ready = p.iter().filter(|p| issue3_common::is_ready(p)).count();
        let imgs: Vec<String> = p
            .iter()
            .map(|p| {
                p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        (ready, imgs)
    };
    wait_for(T, "daemonset rolled to busybox:2", || {
        let (ready, imgs) = images(&k);
        (ready == 4 && imgs.len() == 4 && imgs.iter().all(|i| i == "busybox:2")).then_some(())
    });
    let hist = k.ok(&["rollout", "history", "ds/agent"]);
    assert!(hist.contains('1') && hist.contains('2'), "two revisions: {hist}");
    k.ok(&["rollout", "undo", "ds/agent"]);
    wait_for(T, "daemonset back on busybox:1", || {
        let (ready, imgs) = images(&k);
        (ready == 4 && imgs.len() == 4 && imgs.iter().all(|i| i == "busybox:1")).then_some(())
    });

    // StatefulSet: ordered creation (watched), PVCs, ordered scale-down.
    let watch = {
        let kw = k.with_timeout(Duration::from_secs(40));
        std::thread::spawn(move || {
            let args = [
                "get",
                "pods",
                "-l",
                "app=sts",
                "-w",
                "-o",
                "jsonpath={.metadata.name}{\"\\n\"}",
            ];
            match kw.run(&args) {
                Ok(o) => o.stdout,
                Err(skiff_testkit::kubectl::Error::Timeout { stdout, .. }) => stdout,
                Err(e) => panic!("kubectl watch: {e}"),
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let sts = r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"web"},"spec":{"serviceName":"web","replicas":3,"selector":{"matchLabels":{"app":"sts"}},"template":{"metadata":{"labels":{"app":"sts"}},"spec":{"containers":[{"name":"w","image":"nginx","volumeMounts":[{"name":"data","mountPath":"/data"}]}]}},"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}]}}"#;
    k.ok_stdin(&["apply", "-f", "-"], Some(sts));
    let p = wait_ready_pods(&k, "default", "app=sts", 3, T);
    let seen = watch.join().unwrap();
    let mut first_seen: Vec<&str> = Vec::new();
    for name in seen.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !first_seen.contains(&name) {
            first_seen.push(name);
        }
    }
    assert_eq!(
        first_seen,
        ["web-0", "web-1", "web-2"],
        "watch saw pods created in order"
    );
    let by_name = |n: &str| p.iter().find(|p| p["metadata"]["name"] == n).unwrap().clone();
    for i in 0..2 {
        let prev = by_name(&format!("web-{i}"));
        let next = by_name(&format!("web-{}", i + 1));
        let ready_at = prev["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()["lastTransitionTime"]
            .as_str()
            .unwrap()
            .to_string();
        let created = next["metadata"]["creationTimestamp"].as_str().unwrap();
        assert!(
            created >= ready_at.as_str(),
            "web-{} created before web-{i} was Ready",
            i + 1
        );
        assert_eq!(next["spec"]["hostname"], format!("web-{}", i + 1));
        assert_eq!(next["spec"]["subdomain"], "web");
        assert_eq!(
            next["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
            format!("{}", i + 1)
        );
    }
    let claims = k.ok(&["get", "pvc", "-o", "jsonpath={.items[*].metadata.name}"]);
    let mut claims: Vec<&str> = claims.split_whitespace().collect();
    claims.sort();
    assert_eq!(claims, ["data-web-0", "data-web-1", "data-web-2"]);
    assert_eq!(
        by_name("web-2")["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "data-web-2"
    );

    k.ok(&["scale", "sts", "web", "--replicas=1"]);
    wait_for(T, "web scaled down to web-0", || {
        let names: Vec<String> = pods(&k, "default", "app=sts")
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        let has = |n: &str| names.iter().any(|x| x == n);
        assert!(
            !has("web-2") || has("web-1"),
            "web-1 removed before web-2: {names:?}"
        );
        (names == ["web-0"]).then_some(())
    });
    let claims = k.ok(&["get", "pvc", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert_eq!(
        claims.split_whitespace().count(),
        3,
        "claims are retained on scale-down"
    );
}

#[test]
fn placement_follows_selectors_taints_and_reports_failed_scheduling() {
    let mut c = SimCluster::start(2, &["--label", "disk=hdd"]);
    c.add_nodes(&["--count", "1", "--name-prefix", "ssd-", "--label", "disk=ssd"]);
    c.add_nodes(&[
        "--count",
        "1",
        "--name-prefix",
        "gpu-",
        "--taint",
        "gpu=true:NoSchedule",
    ]);
    c.wait_ready_nodes(4);
    let k = c.kubectl();
    k.ok(&[
        "run",
        "fast",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"nodeSelector":{"disk":"ssd"}}}"#,
    ]);
    wait_for(T, "fast on ssd-0", || {
        (k.ok(&["get", "pod", "fast", "-o", "jsonpath={.spec.nodeName}"]) == "ssd-0").then_some(())
    });
    k.ok(&["create", "deployment", "spread", "--image=nginx", "--replicas=6"]);
    let p = wait_ready_pods(&k, "default", "app=spread", 6, T);
    assert!(
        p.iter().all(|p| p["spec"]["nodeName"] != "gpu-0"),
        "no pod without toleration on the tainted node"
    );

    k.ok(&[
        "run",
        "huge",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"containers":[{"name":"huge","image":"nginx","resources":{"requests":{"cpu":"100"}}}]}}"#,
    ]);
    wait_for(T, "FailedScheduling event", || {
        let ev = k.ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=huge",
            "-o",
            "jsonpath={.items[*].reason} {.items[*].message}",
        ]);
        (ev.contains("FailedScheduling")
            && ev.contains("0/4 nodes are available")
            && ev.contains("Insufficient cpu"))
        .then_some(())
    });
    assert_eq!(
        k.ok(&["get", "pod", "huge", "-o", "jsonpath={.status.phase}"]),
        "Pending"
    );
}

#[test]
fn namespace_deletion_removes_everything() {
    let c = SimCluster::start(2, &[]);
    let k = c.kubectl();
    k.ok(&["create", "namespace", "shop"]);
    k.ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "shop",
        "--image=nginx",
        "--replicas=2",
    ]);
    wait_ready_pods(&k, "shop", "app=web", 2, T);
    k.ok(&["delete", "namespace", "shop", "--timeout=60s"]);
    assert!(!k.run(&["get", "namespace", "shop"]).unwrap().success());
}

#[test]
fn lost_node_pods_move_within_ten_seconds() {
    let c = SimCluster::start(3, &[]);
    let k = c.kubectl();
    k.ok(&["create", "deployment", "web", "--image=nginx", "--replicas=6"]);
    let p = wait_ready_pods(&k, "default", "app=web", 6, T);
    let lost = p[0]["spec"]["nodeName"].as_str().unwrap().to_string();
    c.fail_nodes(&[&lost]);
    wait_for(Duration::from_secs(60), "node NotReady", || {
        let out = k.ok(&["get", "node", &lost, "--no-headers"]);
        out.contains("NotReady").then_some(())
    });
    // The default not-ready toleration moves the pods within 10 s of NotReady.
    wait_for(Duration::from_secs(10), "pods running elsewhere", || {
        let p = pods(&k, "default", "app=web");
        let elsewhere = p
            .iter()
            .filter(|p| issue3_common::is_ready(p) && p["spec"]["nodeName"] != lost.as_str())
            .count();
        (elsewhere >= 6).then_some(())
    });
}
