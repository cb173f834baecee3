use k8s_cri::v1::Mount;
use k8s_openapi::api::core::v1::Pod;

use super::env::Env;
use super::{build, container_hash, log_path, read_termination_message, termination_log_path};
use crate::labels;

fn pod() -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "prod", "uid": "u-1"},
        "spec": {"terminationGracePeriodSeconds": 5, "containers": [{
            "name": "app", "image": "skiff.local/busybox:1",
            "command": ["sh", "-c"], "args": ["echo $(GREETING) $$(HOME) $(NOPE)"],
            "workingDir": "/srv", "tty": true, "stdin": true,
            "resources": {"limits": {"cpu": "1", "memory": "64Mi"}}
        }]}
    }))
    .unwrap()
}

#[test]
fn build_expands_args_and_carries_metadata() {
    let p = pod();
    let c = p.spec.as_ref().unwrap().containers[0].clone();
    let mut env = Env::default();
    env.set("GREETING".into(), "hi".into());
    let mounts = vec![Mount {
        container_path: "/data".into(),
        host_path: "/x".into(),
        ..Default::default()
    }];
    let cfg = build(&p, &c, 3, env, mounts, 8 << 30);
    let meta = cfg.metadata.as_ref().unwrap();
    assert_eq!((meta.name.as_str(), meta.attempt), ("app", 3));
    assert_eq!(cfg.image.as_ref().unwrap().image, "skiff.local/busybox:1");
    assert_eq!(cfg.command, ["sh", "-c"]);
    assert_eq!(cfg.args, ["echo hi $(HOME) $(NOPE)"]);
    assert_eq!(cfg.working_dir, "/srv");
    assert!(cfg.tty && cfg.stdin && !cfg.stdin_once);
    assert_eq!(cfg.envs.len(), 1);
    assert_eq!(cfg.mounts.len(), 1);
    assert_eq!(cfg.log_path, "app/3.log");
    assert_eq!(cfg.labels[labels::POD_UID], "u-1");
    assert_eq!(cfg.labels[labels::CONTAINER_NAME], "app");
    assert_eq!(cfg.labels[labels::MANAGED_BY_SKIFF], "true");
    assert_eq!(cfg.annotations[labels::RESTART_COUNT], "3");
    assert_eq!(cfg.annotations[labels::TERMINATION_GRACE_PERIOD], "5");
    assert_eq!(cfg.annotations[labels::CONTAINER_HASH], container_hash(&c));
    let linux = cfg.linux.unwrap();
    let res = linux.resources.unwrap();
    assert_eq!((res.cpu_quota, res.memory_limit_in_bytes), (100_000, 64 << 20));
    assert!(linux.security_context.is_some());
}

#[test]
fn hash_changes_with_the_spec_and_log_path_is_relative() {
    let p = pod();
    let mut c = p.spec.as_ref().unwrap().containers[0].clone();
    let before = container_hash(&c);
    assert_eq!(before, container_hash(&c));
    c.image = Some("other".into());
    assert_ne!(before, container_hash(&c));
    assert_eq!(log_path("init-db", 0), "init-db/0.log");
}

#[test]
fn termination_message_is_read_back_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::AgentConfig::new("n", dir.path());
    assert_eq!(read_termination_message(&cfg, "u", "app", 2), None);
    let path = termination_log_path(&cfg, "u", "app", 2);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "").unwrap();
    assert_eq!(read_termination_message(&cfg, "u", "app", 2), None);
    std::fs::write(&path, format!("{}end", "x".repeat(5000))).unwrap();
    let msg = read_termination_message(&cfg, "u", "app", 2).unwrap();
    assert_eq!(msg.len(), 4096);
    assert!(msg.ends_with("xend"));
}
