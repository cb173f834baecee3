//! Issue 4 e2e: a pod of `skiff server` gets the kube-api-access volume
//! (ServiceAccount admission, TokenRequest by the agent, the published
//! `kube-root-ca.crt`) and reads its token, CA and namespace from
//! /var/run/secrets/kubernetes.io/serviceaccount.

#![allow(clippy::unwrap_used)]

mod issue4_common;

use issue4_common::*;

#[test]
fn a_pod_reads_its_service_account_token_ca_and_namespace() {
    let Some(c) = shared() else { return };
    let k = c.kubectl();
    let ns = "i4-sa";
    namespace(&k, ns);
    // The controllers publish the account and the CA shortly after the namespace appears.
    for what in [["serviceaccount", "default"], ["configmap", "kube-root-ca.crt"]] {
        wait_for(T, &format!("{} {}", what[0], what[1]), || {
            k.run(&["get", what[0], what[1], "-n", ns])
                .ok()
                .filter(|o| o.success())
                .map(|_| ())
        });
    }
    let dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let script = format!(
        "echo ns=$(cat {dir}/namespace); head -c 3 {dir}/token; echo; head -n 1 {dir}/ca.crt; exec sleep 3600"
    );
    apply(&k, ns, &sh_pod("reader", "Always", &script));
    let p = wait_pod(&k, ns, "reader", "Running", |p| p["status"]["phase"] == "Running");
    let volumes = p["spec"]["volumes"].as_array().cloned().unwrap_or_default();
    assert!(
        volumes.iter().any(|v| v["name"]
            .as_str()
            .unwrap_or_default()
            .starts_with("kube-api-access-")),
        "{volumes:?}"
    );
    let logs = wait_for(T, "the pod's output", || {
        let out = k.run(&["logs", "reader", "-n", ns]).ok()?;
        out.stdout.contains("CERTIFICATE").then_some(out.stdout)
    });
    assert!(logs.contains("ns=i4-sa"), "{logs}");
    assert!(logs.contains("eyJ"), "{logs}");
    assert!(logs.contains("-----BEGIN CERTIFICATE-----"), "{logs}");
}
