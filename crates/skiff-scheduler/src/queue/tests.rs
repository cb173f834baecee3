use super::*;
use crate::test_util::pod;

fn info(name: &str, prio: i32) -> Arc<PodInfo> {
    Arc::new(pod(name).priority(prio).info())
}

#[test]
fn highest_priority_then_oldest_first() {
    let now = Instant::now();
    let mut q = SchedulingQueue::new(QueueConfig::default());
    q.add_or_update(info("low", 0), false, now);
    q.add_or_update(info("high", 100), false, now);
    q.add_or_update(info("low2", 0), false, now);
    let order: Vec<String> = std::iter::from_fn(|| q.pop())
        .map(|p| p.info.name.clone())
        .collect();
    assert_eq!(order, vec!["high", "low", "low2"]);
}

#[test]
fn failed_pods_wait_for_an_event_then_back_off() {
    let now = Instant::now();
    let mut q = SchedulingQueue::new(QueueConfig::default());
    q.add_or_update(info("p", 0), false, now);
    let p = q.pop().unwrap();
    q.requeue_failed(p, false, now);
    assert_eq!(q.lens(), (0, 0, 1), "no event since pop: unschedulable");
    assert!(q.pop().is_none());
    q.move_all_to_active_or_backoff(now);
    assert_eq!(q.lens(), (0, 1, 0), "within its 1s backoff");
    q.tick(now + Duration::from_millis(500));
    assert!(q.pop().is_none());
    q.tick(now + Duration::from_secs(1));
    let p = q.pop().expect("backoff over");
    assert_eq!(p.attempts, 1);
}

#[test]
fn backoff_doubles_up_to_ten_seconds() {
    let now = Instant::now();
    let mut q = SchedulingQueue::new(QueueConfig::default());
    q.add_or_update(info("p", 0), false, now);
    let mut t = now;
    let mut waits = Vec::new();
    for _ in 0..6 {
        let p = q.pop().unwrap();
        q.requeue_failed(p, true, t);
        let due = q.tick(t).unwrap();
        waits.push(due.duration_since(t).as_secs());
        t = due;
        q.tick(t);
    }
    assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
}

#[test]
fn an_event_during_the_attempt_sends_the_pod_to_backoff() {
    let now = Instant::now();
    let mut q = SchedulingQueue::new(QueueConfig::default());
    q.add_or_update(info("p", 0), false, now);
    let p = q.pop().unwrap();
    q.move_all_to_active_or_backoff(now);
    q.requeue_failed(p, false, now);
    assert_eq!(q.lens(), (0, 1, 0));
}

#[test]
fn spec_updates_and_deletes() {
    let now = Instant::now();
    let mut q = SchedulingQueue::new(QueueConfig::default());
    q.add_or_update(info("p", 0), false, now);
    let p = q.pop().unwrap();
    q.requeue_failed(p, false, now);
    q.add_or_update(info("p", 0), false, now);
    assert_eq!(q.lens(), (0, 0, 1), "status-only update keeps it waiting");
    q.add_or_update(info("p", 0), true, now);
    assert_eq!(q.lens(), (1, 0, 0), "a spec change retries at once");
    q.delete("default/p");
    assert!(q.pop().is_none());
    assert!(!q.contains("default/p"));
    q.tick(now + Duration::from_secs(400));
}
