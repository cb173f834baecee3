//! The real kubectl (/usr/bin/kubectl) against the router served over plain
//! HTTP on 127.0.0.1: create, apply (twice: created then unchanged), get in
//! table/yaml/json forms, patch, scale, label, delete and `get -w`.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Kubectl {
    server: String,
}

impl Kubectl {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut cmd = Command::new("/usr/bin/kubectl");
        cmd.env("KUBECONFIG", "/dev/null")
            .env("HOME", std::env::temp_dir())
            .arg("--server")
            .arg(&self.server)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_in(args, None)
    }

    fn ok_in(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.run(args, stdin);
        assert!(ok, "kubectl {args:?} failed:\n{out}\n{err}");
        out
    }
}

async fn serve() -> (Kubectl, common::Fixture) {
    let f = common::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = f.server.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (
        Kubectl {
            server: format!("http://127.0.0.1:{port}"),
        },
        f,
    )
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

const MANIFEST: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: busybox
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_get_patch_scale_delete() {
    let (k, _f) = serve().await;
    blocking(move || {
        let out = k.ok_in(&["apply", "-f", "-"], Some(MANIFEST));
        assert!(out.contains("configmap/settings created"), "{out}");
        assert!(out.contains("deployment.apps/web created"), "{out}");
        assert!(out.contains("service/web created"), "{out}");
        let out = k.ok_in(&["apply", "-f", "-"], Some(MANIFEST));
        assert!(out.contains("configmap/settings unchanged"), "{out}");
        assert!(out.contains("deployment.apps/web unchanged"), "{out}");
        let changed = MANIFEST.replace("mode: fast", "mode: slow");
        let out = k.ok_in(&["apply", "-f", "-"], Some(&changed));
        assert!(out.contains("configmap/settings configured"), "{out}");

        let out = k.ok(&["get", "deployments"]);
        assert!(out.starts_with("NAME"), "{out}");
        assert!(out.contains("web"), "{out}");
        let out = k.ok(&["get", "configmap", "settings", "-o", "jsonpath={.data.mode}"]);
        assert_eq!(out, "slow");
        let out = k.ok(&["get", "svc", "web", "-o", "yaml"]);
        assert!(out.contains("clusterIP: 10.43."), "{out}");

        k.ok(&[
            "patch",
            "configmap",
            "settings",
            "--type=merge",
            "-p",
            r#"{"data":{"extra":"1"}}"#,
        ]);
        k.ok(&[
            "patch",
            "configmap",
            "settings",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/data/json","value":"2"}]"#,
        ]);
        k.ok(&[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"metadata":{"annotations":{"a":"b"}}}"#,
        ]);
        let out = k.ok(&["get", "configmap", "settings", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (v["data"]["extra"].as_str(), v["data"]["json"].as_str()),
            (Some("1"), Some("2"))
        );

        let out = k.ok(&["scale", "deployment", "web", "--replicas=4"]);
        assert!(out.contains("deployment.apps/web scaled"), "{out}");
        let out = k.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"]);
        assert_eq!(out, "4");

        k.ok(&["label", "configmap", "settings", "team=core"]);
        let out = k.ok(&["get", "configmap", "-l", "team=core", "-o", "name"]);
        assert_eq!(out.trim(), "configmap/settings");

        let dry = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dry\ndata:\n  a: b\n";
        let out = k.ok_in(&["apply", "--dry-run=server", "-f", "-"], Some(dry));
        assert!(out.contains("configmap/dry created (server dry run)"), "{out}");
        let (ok, _, err) = k.run(&["get", "configmap", "dry"], None);
        assert!(!ok && err.contains("not found"), "{err}");

        let out = k.ok_in(&["delete", "-f", "-"], Some(MANIFEST));
        assert!(out.contains("deployment.apps \"web\" deleted"), "{out}");
        let (ok, _, err) = k.run(&["get", "deployment", "web"], None);
        assert!(!ok && err.contains("not found"), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_generators_send_protobuf() {
    let (k, _f) = serve().await;
    blocking(move || {
        k.ok(&["create", "namespace", "team"]);
        k.ok(&["-n", "team", "create", "configmap", "cfg", "--from-literal=a=b"]);
        k.ok(&[
            "-n",
            "team",
            "create",
            "secret",
            "generic",
            "pw",
            "--from-literal=pass=s3cr3t",
        ]);
        k.ok(&[
            "-n",
            "team",
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=2",
            "--port=80",
        ]);
        k.ok(&[
            "-n",
            "team",
            "create",
            "service",
            "clusterip",
            "web",
            "--tcp=80:8080",
        ]);
        k.ok(&["-n", "team", "create", "serviceaccount", "bot"]);
        k.ok(&[
            "-n",
            "team",
            "create",
            "role",
            "reader",
            "--verb=get",
            "--resource=pods",
        ]);
        k.ok(&[
            "-n",
            "team",
            "create",
            "rolebinding",
            "rb",
            "--role=reader",
            "--serviceaccount=team:bot",
        ]);
        k.ok(&[
            "-n",
            "team",
            "create",
            "job",
            "once",
            "--image=busybox",
            "--",
            "true",
        ]);
        assert_eq!(
            k.ok(&["-n", "team", "get", "cm", "cfg", "-o", "jsonpath={.data.a}"]),
            "b"
        );
        assert_eq!(
            k.ok(&["-n", "team", "get", "secret", "pw", "-o", "jsonpath={.data.pass}"]),
            "czNjcjN0"
        );
        let image = k.ok(&[
            "-n",
            "team",
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ]);
        assert_eq!(image, "busybox");
        let port = k.ok(&[
            "-n",
            "team",
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.spec.ports[0].targetPort}",
        ]);
        assert_eq!(port, "8080");
        let (ok, _, err) = k.run(&["-n", "team", "create", "configmap", "cfg"], None);
        assert!(!ok && err.contains("already exists"), "{err}");
        k.ok(&["delete", "namespace", "team"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_describe_edit_annotate_server_side_apply() {
    let (k, _f) = serve().await;
    blocking(move || {
        k.ok_in(&["apply", "-f", "-"], Some(MANIFEST));
        let out = k.ok(&["describe", "deployment", "web"]);
        assert!(out.contains("Name:") && out.contains("web"), "{out}");
        let out = k.ok(&["describe", "configmap", "settings"]);
        assert!(out.contains("mode"), "{out}");
        k.ok(&["annotate", "configmap", "settings", "note=hello"]);
        let out = k.ok(&[
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.metadata.annotations.note}",
        ]);
        assert_eq!(out, "hello");
        let out = k.ok(&[
            "get",
            "deployments",
            "-o",
            "custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas",
        ]);
        assert!(out.contains("web") && out.contains("REPLICAS"), "{out}");
        let out = k.ok(&["get", "svc", "-o", "wide"]);
        assert!(out.contains("kubernetes") && out.contains("web"), "{out}");

        let (ok, out, err) = {
            let mut cmd = std::process::Command::new("/usr/bin/kubectl");
            cmd.env("KUBECONFIG", "/dev/null")
                .env("KUBE_EDITOR", "sed -i s/fast/edited/g")
                .args(["--server", &k.server, "edit", "configmap", "settings"]);
            let o = cmd.output().unwrap();
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        };
        assert!(ok, "edit failed: {out}\n{err}");
        let out = k.ok(&["get", "configmap", "settings", "-o", "jsonpath={.data.mode}"]);
        assert_eq!(out, "edited");

        let ssa = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n";
        let out = k.ok_in(&["apply", "--server-side", "-f", "-"], Some(ssa));
        assert!(out.contains("configmap/ssa serverside-applied"), "{out}");
        let out = k.ok_in(
            &["apply", "--server-side", "-f", "-"],
            Some(&ssa.replace("\"1\"", "\"2\"")),
        );
        assert!(out.contains("serverside-applied"), "{out}");
        assert_eq!(
            k.ok(&["get", "configmap", "ssa", "-o", "jsonpath={.data.a}"]),
            "2"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_sees_a_change() {
    let (k, f) = serve().await;
    let server = k.server.clone();
    let watcher = tokio::task::spawn_blocking(move || {
        Command::new("/usr/bin/kubectl")
            .env("KUBECONFIG", "/dev/null")
            .args([
                "--server",
                &server,
                "get",
                "configmaps",
                "-w",
                "--request-timeout=4s",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
            .wait_with_output()
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::default_namespaced(f.client.clone());
    let cm = serde_json::from_value(serde_json::json!({"metadata": {"name": "seen-by-watch"}})).unwrap();
    api.create(&Default::default(), &cm).await.unwrap();
    let out = watcher.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("seen-by-watch"),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
