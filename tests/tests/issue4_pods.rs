//! Issue 4 e2e "Must show": real kubectl against `skiff server` whose
//! embedded agent runs pods as real containers in a containerd of the
//! test's own. One cluster is shared by the tests running at the same time;
//! each test works in its own namespace.

#![allow(clippy::unwrap_used)]

mod issue4_common;

use std::time::{Duration, Instant};

use issue4_common::*;

#[test]
fn a_busybox_pod_runs_with_a_pod_ip_and_kubectl_logs_shows_its_output() {
    let Some(c) = shared() else { return };
    let k = c.kubectl();
    namespace(&k, "i4-run");
    apply(
        &k,
        "i4-run",
        &sh_pod("hello", "Always", "echo hello-from-skiff; exec sleep 3600"),
    );
    let p = wait_pod(&k, "i4-run", "hello", "Running and Ready", |p| {
        p["status"]["phase"] == "Running" && ready_condition(p).as_deref() == Some("True")
    });
    let ip = p["status"]["podIP"].as_str().unwrap_or_default().to_string();
    let cidr_prefix = c
        .node()
        .unwrap()
        .cluster_cidr()
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    assert!(
        ip.starts_with(&format!("{cidr_prefix}.")),
        "pod IP {ip:?} not in {cidr_prefix}.0.0/16"
    );
    assert_eq!(p["status"]["hostIP"], "127.0.0.1");
    let cs = container_status(&p, "main").unwrap();
    assert!(
        cs["containerID"]
            .as_str()
            .unwrap_or_default()
            .starts_with("containerd://"),
        "{cs}"
    );
    assert!(cs["imageID"].as_str().is_some_and(|s| !s.is_empty()), "{cs}");
    let table = k.ok(&["get", "pod", "hello", "-n", "i4-run", "-o", "wide"]);
    assert!(
        table.contains("1/1") && table.contains("Running") && table.contains(&ip),
        "{table}"
    );
    let logs = wait_for(T, "the pod's output in kubectl logs", || {
        let out = k.run(&["logs", "hello", "-n", "i4-run"]).ok()?;
        out.stdout.contains("hello-from-skiff").then_some(out.stdout)
    });
    assert_eq!(logs.trim(), "hello-from-skiff");
}

#[test]
fn kubectl_exec_returns_the_output_and_exit_code() {
    let Some(c) = shared() else { return };
    let k = c.kubectl();
    namespace(&k, "i4-exec");
    apply(&k, "i4-exec", &sh_pod("box", "Always", "exec sleep 3600"));
    wait_phase(&k, "i4-exec", "box", "Running");
    let ok = k.ok(&[
        "exec",
        "box",
        "-n",
        "i4-exec",
        "--",
        "sh",
        "-c",
        "echo out-$((6*7))",
    ]);
    assert_eq!(ok.trim(), "out-42");
    let failed = k.fails(&[
        "exec",
        "box",
        "-n",
        "i4-exec",
        "--",
        "sh",
        "-c",
        "echo partial; exit 3",
    ]);
    assert_eq!(failed.code, Some(3), "stderr: {}", failed.stderr);
    assert!(failed.stdout.contains("partial"), "{}", failed.stdout);
    let stdin = k.ok_stdin(
        &["exec", "-i", "box", "-n", "i4-exec", "--", "cat"],
        Some("piped in\n"),
    );
    assert_eq!(stdin, "piped in\n");
}

#[test]
fn a_container_killed_from_outside_is_restarted_and_restart_count_goes_up() {
    let Some(c) = shared() else { return };
    let k = c.kubectl();
    namespace(&k, "i4-kill");
    apply(&k, "i4-kill", &sh_pod("victim", "Always", "exec sleep 3600"));
    let p = wait_phase(&k, "i4-kill", "victim", "Running");
    let id = container_id(&p, "main").unwrap();
    let killed = c
        .node()
        .unwrap()
        .ctr(&["tasks", "kill", "--signal", "SIGKILL", &id])
        .unwrap();
    assert!(
        killed.status.success(),
        "{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    let p = wait_pod(&k, "i4-kill", "victim", "restarted and running", |p| {
        restarts(p, "main") >= 1
            && container_status(p, "main").is_some_and(|s| s["state"]["running"].is_object())
    });
    let cs = container_status(&p, "main").unwrap();
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 137, "{cs}");
    assert_eq!(cs["lastState"]["terminated"]["reason"], "Error", "{cs}");
    assert_ne!(container_id(&p, "main").unwrap(), id, "a new container runs");
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    let Some(c) = shared() else { return };
    let k = c.kubectl();
    namespace(&k, "i4-live");
    apply(
        &k,
        "i4-live",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: sick
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: {IMAGE}
      command: ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 3600"]
      livenessProbe:
        exec:
          command: ["cat", "/tmp/healthy"]
        periodSeconds: 1
        failureThreshold: 1
"#
        ),
    );
    let p = wait_pod(&k, "i4-live", "sick", "restarted by its liveness probe", |p| {
        restarts(p, "main") >= 1
    });
    assert_eq!(p["status"]["phase"], "Running");
    let events = k.ok(&["get", "events", "-n", "i4-live"]);
    assert!(events.contains("Liveness probe failed"), "{events}");
}

#[test]
fn a_pod_whose_readiness_probe_fails_is_running_but_not_ready() {
    let Some(c) = shared() else { return };
    let k = c.kubectl();
    namespace(&k, "i4-ready");
    let probe_pod = |name: &str, probe: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: {IMAGE}
      command: ["sleep", "3600"]
      readinessProbe:
        exec:
          command: ["{probe}"]
        periodSeconds: 1
"#
        )
    };
    apply(&k, "i4-ready", &probe_pod("unready", "false"));
    apply(&k, "i4-ready", &probe_pod("ready", "true"));
    wait_pod(&k, "i4-ready", "ready", "Ready", |p| {
        ready_condition(p).as_deref() == Some("True")
    });
    let p = wait_phase(&k, "i4-ready", "unready", "Running");
    // The ready twin became Ready meanwhile: the probe had time to run here too.
    std::thread::sleep(Duration::from_secs(2));
    let p = pod(&k, "i4-ready", "unready").unwrap_or(p);
    assert_eq!(ready_condition(&p).as_deref(), Some("False"), "{}", p["status"]);
    assert_eq!(container_status(&p, "main").unwrap()["ready"], false);
    let table = k.ok(&["get", "pod", "unready", "-n", "i4-ready", "--no-headers"]);
    assert!(table.contains("0/1") && table.contains("Running"), "{table}");
}

#[test]
fn a_pod_sees_a_config_map_and_a_secret_as_env_and_as_files() {
    let Some(c) = shared() else { return };
    let k = c.kubectl();
    namespace(&k, "i4-conf");
    k.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "i4-conf",
        "--from-literal=color=blue",
    ]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "-n",
        "i4-conf",
        "--from-literal=password=s3cr3t",
    ]);
    apply(
        &k,
        "i4-conf",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: {IMAGE}
      command: ["sh", "-c", "echo env-color=$COLOR env-password=$PASSWORD; echo file-color=$(cat /etc/settings/color) file-password=$(cat /etc/creds/password)"]
      env:
        - name: COLOR
          valueFrom:
            configMapKeyRef: {{name: settings, key: color}}
        - name: PASSWORD
          valueFrom:
            secretKeyRef: {{name: creds, key: password}}
      volumeMounts:
        - {{name: settings, mountPath: /etc/settings}}
        - {{name: creds, mountPath: /etc/creds, readOnly: true}}
  volumes:
    - name: settings
      configMap: {{name: settings}}
    - name: creds
      secret: {{secretName: creds}}
"#
        ),
    );
    wait_succeeded(&k, "i4-conf", "reader");
    let logs = k.ok(&["logs", "reader", "-n", "i4-conf"]);
    assert!(logs.contains("env-color=blue env-password=s3cr3t"), "{logs}");
    assert!(logs.contains("file-color=blue file-password=s3cr3t"), "{logs}");
}

#[test]
fn an_empty_dir_is_shared_by_two_containers_of_a_pod() {
    let Some(c) = shared() else { return };
    let k = c.kubectl();
    namespace(&k, "i4-empty");
    apply(
        &k,
        "i4-empty",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: pair
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: writer
      image: {IMAGE}
      command: ["sh", "-c", "echo written-by-writer > /shared/note; exec sleep 3600"]
      volumeMounts: [{{name: shared, mountPath: /shared}}]
    - name: reader
      image: {IMAGE}
      command: ["sh", "-c", "until [ -f /shared/note ]; do sleep 0.2; done; cat /shared/note; exec sleep 3600"]
      volumeMounts: [{{name: shared, mountPath: /shared}}]
  volumes:
    - name: shared
      emptyDir: {{}}
"#
        ),
    );
    wait_phase(&k, "i4-empty", "pair", "Running");
    let logs = wait_for(T, "the reader's output", || {
        let out = k.run(&["logs", "pair", "-c", "reader", "-n", "i4-empty"]).ok()?;
        out.stdout.contains("written-by-writer").then_some(out.stdout)
    });
    assert_eq!(logs.trim(), "written-by-writer");
}

#[test]
fn a_pvc_keeps_its_data_across_pod_deletion_and_recreation() {
    let Some(c) = shared() else { return };
    let k = c.kubectl();
    namespace(&k, "i4-pvc");
    apply(
        &k,
        "i4-pvc",
        r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 64Mi
"#,
    );
    let with_volume = |name: &str, script: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: {IMAGE}
      command: ["sh", "-c", "{script}"]
      volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
    - name: data
      persistentVolumeClaim: {{claimName: data}}
"#
        )
    };
    apply(
        &k,
        "i4-pvc",
        &with_volume("first", "echo kept-across-pods > /data/file"),
    );
    wait_succeeded(&k, "i4-pvc", "first");
    let pvc = k.ok(&[
        "get",
        "pvc",
        "data",
        "-n",
        "i4-pvc",
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(pvc, "Bound");
    k.ok(&["delete", "pod", "first", "-n", "i4-pvc", "--wait=true"]);
    apply(&k, "i4-pvc", &with_volume("second", "cat /data/file"));
    wait_succeeded(&k, "i4-pvc", "second");
    let logs = k.ok(&["logs", "second", "-n", "i4-pvc"]);
    assert_eq!(logs.trim(), "kept-across-pods");
}

#[test]
fn a_jobs_pod_runs_to_completed() {
    let Some(c) = shared() else { return };
    let k = c.kubectl();
    namespace(&k, "i4-job");
    k.ok(&[
        "create",
        "job",
        "once",
        "-n",
        "i4-job",
        &format!("--image={IMAGE}"),
        "--",
        "sh",
        "-c",
        "echo job-done",
    ]);
    k.ok(&[
        "wait",
        "--for=condition=complete",
        "job/once",
        "-n",
        "i4-job",
        "--timeout=60s",
    ]);
    let pods = k.ok(&[
        "get",
        "pods",
        "-n",
        "i4-job",
        "-l",
        "job-name=once",
        "--no-headers",
    ]);
    assert!(pods.contains("Completed") && pods.contains("0/1"), "{pods}");
    let logs = k.ok(&["logs", "job/once", "-n", "i4-job"]);
    assert_eq!(logs.trim(), "job-done");
}

#[test]
fn kubectl_delete_pod_ends_it_within_its_grace_period() {
    let Some(c) = shared() else { return };
    let k = c.kubectl();
    namespace(&k, "i4-del");
    // The container ignores SIGTERM: the agent must SIGKILL it when the grace period ends.
    apply(
        &k,
        "i4-del",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: stubborn
spec:
  terminationGracePeriodSeconds: 3
  containers:
    - name: main
      image: {IMAGE}
      command: ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]
"#
        ),
    );
    let p = wait_phase(&k, "i4-del", "stubborn", "Running");
    let id = container_id(&p, "main").unwrap();
    let node = c.node().unwrap();
    assert!(node.running_containers(false).contains(&id));
    let start = Instant::now();
    k.ok(&[
        "delete",
        "pod",
        "stubborn",
        "-n",
        "i4-del",
        "--wait=true",
        "--timeout=30s",
    ]);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "ended before the grace period: {took:?}"
    );
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} for a 3 s grace period"
    );
    assert!(
        !node.running_containers(false).contains(&id),
        "the container still runs"
    );
}

#[test]
fn two_pods_on_the_node_reach_each_other_over_their_pod_ips() {
    let Some(c) = shared() else { return };
    let k = c.kubectl();
    namespace(&k, "i4-net");
    apply(
        &k,
        "i4-net",
        &sh_pod(
            "server",
            "Always",
            "mkdir -p /www && echo served-by-pod-a > /www/index.html && exec httpd -f -p 8080 -h /www",
        ),
    );
    let server = wait_phase(&k, "i4-net", "server", "Running");
    let ip = server["status"]["podIP"].as_str().unwrap().to_string();
    apply(
        &k,
        "i4-net",
        &sh_pod("client", "Never", &format!("wget -q -O - http://{ip}:8080/")),
    );
    let client = wait_succeeded(&k, "i4-net", "client");
    assert_ne!(client["status"]["podIP"], server["status"]["podIP"]);
    let logs = k.ok(&["logs", "client", "-n", "i4-net"]);
    assert_eq!(logs.trim(), "served-by-pod-a");
}
