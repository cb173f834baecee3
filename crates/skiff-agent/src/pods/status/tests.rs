//! Status computation: phases, reasons and conditions as kubectl shows them.

use super::*;
use k8s_cri::v1::ContainerMetadata;

fn pod(json: serde_json::Value) -> Pod {
    serde_json::from_value(json).unwrap_or_default()
}

fn instance(name: &str, attempt: u32, state: CriState, exit_code: i32) -> CriStatus {
    CriStatus {
        id: format!("{name}-{attempt}"),
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt,
        }),
        state: state as i32,
        started_at: 1_700_000_000_000_000_000,
        finished_at: if state == CriState::ContainerExited {
            1_700_000_001_000_000_000
        } else {
            0
        },
        exit_code,
        image_ref: "sha256:abc".into(),
        ..CriStatus::default()
    }
}

fn status_of(p: &Pod, containers: Vec<CriStatus>, waiting: HashMap<String, Waiting>) -> PodStatus {
    let rt = PodRuntime {
        sandboxes: vec![],
        containers,
    };
    let probes = |_: &str| ProbeResult {
        started: true,
        ready: false,
        liveness_failed: false,
    };
    pod_status(&StatusInput {
        pod: p,
        runtime: &rt,
        pod_ip: Some("10.42.0.5".into()),
        sandbox_ready: true,
        host_ip: "127.0.0.1".into(),
        waiting: &waiting,
        probes: &probes,
        now: jiff::Timestamp::UNIX_EPOCH,
    })
}

fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
    s.conditions.iter().flatten().find(|c| c.type_ == t).unwrap()
}

#[test]
fn a_running_container_makes_a_ready_running_pod() {
    let p = pod(
        serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    );
    let s = status_of(
        &p,
        vec![instance("c", 0, CriState::ContainerRunning, 0)],
        HashMap::new(),
    );
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.5"));
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert!(c.ready);
    assert_eq!(c.container_id.as_deref(), Some("containerd://c-0"));
    assert_eq!(cond(&s, "Ready").status, "True");
    assert!(s.start_time.is_some());
}

#[test]
fn exit_codes_give_completed_or_error_and_the_phase() {
    let never = |code| {
        let p = pod(serde_json::json!({"metadata": {"name": "p"},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c"}]}}));
        status_of(
            &p,
            vec![instance("c", 0, CriState::ContainerExited, code)],
            HashMap::new(),
        )
    };
    let ok = never(0);
    assert_eq!(ok.phase.as_deref(), Some("Succeeded"));
    let t = ok.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(t.reason.as_deref(), Some("Completed"));
    let bad = never(3);
    assert_eq!(bad.phase.as_deref(), Some("Failed"));
    let t = bad.container_statuses.clone().unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!((t.reason.as_deref(), t.exit_code), (Some("Error"), 3));
    assert_eq!(cond(&bad, "Ready").reason.as_deref(), Some("PodCompleted"));
}

#[test]
fn crash_loop_shows_waiting_with_last_state_and_stays_running() {
    let p = pod(serde_json::json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}));
    let waiting = HashMap::from([(
        "c".to_string(),
        Waiting {
            reason: "CrashLoopBackOff".into(),
            message: "back-off 10s restarting failed container=c pod=p_default(u)".into(),
        },
    )]);
    let mut latest = instance("c", 1, CriState::ContainerExited, 1);
    latest
        .annotations
        .insert(crate::labels::RESTART_COUNT.into(), "1".into());
    let s = status_of(
        &p,
        vec![latest, instance("c", 0, CriState::ContainerExited, 1)],
        waiting,
    );
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(c.restart_count, 1);
    let st = c.state.clone().unwrap();
    assert_eq!(st.waiting.unwrap().reason.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(
        c.last_state
            .clone()
            .unwrap()
            .terminated
            .unwrap()
            .container_id
            .as_deref(),
        Some("containerd://c-1")
    );
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(cond(&s, "ContainersReady").status, "False");
}

#[test]
fn init_containers_gate_the_pod_and_readiness_probes_the_ready_condition() {
    let p = pod(serde_json::json!({"metadata": {"name": "p"}, "spec": {
        "initContainers": [{"name": "i"}],
        "containers": [{"name": "c", "readinessProbe": {"exec": {"command": ["true"]}}}]}}));
    let s = status_of(
        &p,
        vec![instance("i", 0, CriState::ContainerRunning, 0)],
        HashMap::new(),
    );
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let init = cond(&s, "Initialized");
    assert_eq!(
        init.message.as_deref(),
        Some("containers with incomplete status: [i]")
    );
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        c.state.clone().unwrap().waiting.unwrap().reason.as_deref(),
        Some("PodInitializing")
    );
    let s = status_of(
        &p,
        vec![
            instance("i", 0, CriState::ContainerExited, 0),
            instance("c", 0, CriState::ContainerRunning, 0),
        ],
        HashMap::new(),
    );
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(cond(&s, "Initialized").status, "True");
    // The probe says not ready.
    assert_eq!(cond(&s, "Ready").status, "False");
    assert_eq!(
        cond(&s, "Ready").message.as_deref(),
        Some("containers with unready status: [c]")
    );
}
