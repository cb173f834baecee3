//! The CronJob controller's decisions as pure functions: which scheduled
//! time is due (and how many were missed), the Job name for a scheduled
//! time, whether a Job has finished, and which finished Jobs the history
//! limits prune.
//!
//! Must not: call the API server or read the clock; `now` is passed in.

use std::cmp::Ordering;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;

use super::schedule::Schedule;

/// Above this many missed start times upstream warns (`TooManyMissedTimes`).
pub const MANY_MISSED: i64 = 100;

/// Most schedule steps walked one by one before estimating.
const MAX_STEPS: usize = 10_000;

/// The scheduled time that is due now, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The most recent schedule time not after `now`: the one to run.
    pub time: Timestamp,
    /// How many schedule times passed since the last run (1 = none missed).
    pub missed: i64,
}

/// Inputs from the CronJob that decide what is due.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleState {
    /// `metadata.creationTimestamp`.
    pub created: Timestamp,
    /// `status.lastScheduleTime`.
    pub last_scheduled: Option<Timestamp>,
    /// `spec.startingDeadlineSeconds`.
    pub starting_deadline_seconds: Option<i64>,
}

/// As upstream's `mostRecentScheduleTime`: counting from the last scheduled
/// time (or creation, or `now - startingDeadlineSeconds` if later), the most
/// recent activation not after `now`. Only that one runs: missed earlier
/// activations are never caught up one by one.
pub fn due(state: &ScheduleState, now: Timestamp, sched: &Schedule, tz: &TimeZone) -> Option<Due> {
    let mut earliest = state.last_scheduled.unwrap_or(state.created);
    if let Some(sds) = state.starting_deadline_seconds {
        let deadline = now - jiff::SignedDuration::from_secs(sds);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    let t1 = sched.next(earliest, tz)?;
    if t1 > now {
        return None;
    }
    let mut recent = t1;
    let mut missed = 1;
    for _ in 0..MAX_STEPS {
        match sched.next(recent, tz) {
            Some(t) if t <= now => {
                recent = t;
                missed += 1;
            }
            _ => return Some(Due { time: recent, missed }),
        }
    }
    // Very far behind (clock skew, a controller down for years): estimate
    // the count from the first interval and find the latest time directly.
    let t2 = sched.next(t1, tz)?;
    let step = (t2.as_second() - t1.as_second()).max(1);
    let missed = (now.as_second() - t1.as_second()) / step + 1;
    let mut t = now - jiff::SignedDuration::from_secs(step.saturating_mul(2));
    let mut latest = recent;
    while let Some(n) = sched.next(t, tz).filter(|n| *n <= now) {
        latest = n;
        t = n;
    }
    Some(Due { time: latest, missed })
}

/// The name of the Job for `scheduled`: `<cronjob>-<minutes since epoch>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// `scheduled` as RFC 3339 in `tz` (`Z` for UTC), for the
/// `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation.
pub fn scheduled_timestamp(scheduled: Timestamp, tz: &TimeZone) -> String {
    let z = scheduled.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// How a Job ended, if it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Condition Complete=True.
    Complete,
    /// Condition Failed=True.
    Failed,
}

/// Whether `job` has a true Complete or Failed condition.
pub fn finished(job: &Job) -> Option<Finished> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    conds
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some(Finished::Complete),
            "Failed" => Some(Finished::Failed),
            _ => None,
        })
}

fn by_start_time(a: &Job, b: &Job) -> Ordering {
    let start = |j: &Job| j.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0);
    match (start(a), start(b)) {
        (Some(x), Some(y)) if x != y => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        _ => a.name_any().cmp(&b.name_any()),
    }
}

/// Names of finished Jobs to delete so that at most `successful_limit`
/// Complete and `failed_limit` Failed Jobs remain; oldest start time first.
/// A `None` limit keeps every Job of that kind.
pub fn to_prune(jobs: &[Job], successful_limit: Option<i32>, failed_limit: Option<i32>) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, limit) in [
        (Finished::Complete, successful_limit),
        (Finished::Failed, failed_limit),
    ] {
        let Some(limit) = limit else { continue };
        let mut done: Vec<&Job> = jobs.iter().filter(|j| finished(j) == Some(kind)).collect();
        done.sort_by(|a, b| by_start_time(a, b));
        let extra = done.len().saturating_sub(limit.max(0) as usize);
        out.extend(done.iter().take(extra).map(|j| j.name_any()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn state(created: &str, last: Option<&str>, sds: Option<i64>) -> ScheduleState {
        ScheduleState {
            created: ts(created),
            last_scheduled: last.map(ts),
            starting_deadline_seconds: sds,
        }
    }

    #[test]
    fn nothing_due_before_the_first_activation() {
        let s = Schedule::parse("*/5 * * * *").unwrap();
        let st = state("2026-01-01T00:01:00Z", None, None);
        assert_eq!(due(&st, ts("2026-01-01T00:04:59Z"), &s, &TimeZone::UTC), None);
        let d = due(&st, ts("2026-01-01T00:05:01Z"), &s, &TimeZone::UTC).unwrap();
        assert_eq!((d.time, d.missed), (ts("2026-01-01T00:05:00Z"), 1));
    }

    #[test]
    fn missed_runs_collapse_into_the_most_recent_one() {
        let s = Schedule::parse("* * * * *").unwrap();
        let st = state("2026-01-01T00:00:00Z", Some("2026-01-01T00:10:00Z"), None);
        let d = due(&st, ts("2026-01-01T03:00:30Z"), &s, &TimeZone::UTC).unwrap();
        assert_eq!(d.time, ts("2026-01-01T03:00:00Z"));
        assert_eq!(d.missed, 170);
        assert!(d.missed > MANY_MISSED);
    }

    #[test]
    fn starting_deadline_limits_how_far_back_runs_are_counted() {
        let s = Schedule::parse("* * * * *").unwrap();
        let st = state("2026-01-01T00:00:00Z", Some("2026-01-01T00:10:00Z"), Some(200));
        let d = due(&st, ts("2026-01-01T03:00:30Z"), &s, &TimeZone::UTC).unwrap();
        assert_eq!((d.time, d.missed), (ts("2026-01-01T03:00:00Z"), 3));
    }

    #[test]
    fn very_old_schedules_are_estimated_not_walked() {
        let s = Schedule::parse("* * * * *").unwrap();
        let st = state("2000-01-01T00:00:00Z", None, None);
        let d = due(&st, ts("2026-01-01T00:00:30Z"), &s, &TimeZone::UTC).unwrap();
        assert_eq!(d.time, ts("2026-01-01T00:00:00Z"));
        assert!(d.missed > 13_000_000);
    }

    #[test]
    fn job_names_count_minutes_and_annotations_use_the_zone() {
        assert_eq!(job_name("tick", ts("2026-01-01T00:01:00Z")), "tick-29453761");
        let ny = TimeZone::get("America/New_York").unwrap();
        assert_eq!(
            scheduled_timestamp(ts("2026-01-01T14:00:00Z"), &ny),
            "2026-01-01T09:00:00-05:00"
        );
        assert_eq!(
            scheduled_timestamp(ts("2026-01-01T14:00:00Z"), &TimeZone::UTC),
            "2026-01-01T14:00:00Z"
        );
    }

    fn job(name: &str, kind: &str, start: &str) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            status: Some(JobStatus {
                start_time: Some(Time(ts(start))),
                conditions: (!kind.is_empty()).then(|| {
                    vec![JobCondition {
                        type_: kind.into(),
                        status: "True".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn history_limits_prune_the_oldest_finished_jobs() {
        let jobs = vec![
            job("s3", "Complete", "2026-01-01T00:03:00Z"),
            job("s1", "Complete", "2026-01-01T00:01:00Z"),
            job("s2", "Complete", "2026-01-01T00:02:00Z"),
            job("f1", "Failed", "2026-01-01T00:01:30Z"),
            job("f2", "Failed", "2026-01-01T00:02:30Z"),
            job("running", "", "2026-01-01T00:00:00Z"),
        ];
        assert_eq!(to_prune(&jobs, Some(1), Some(1)), ["s1", "s2", "f1"]);
        assert_eq!(to_prune(&jobs, None, Some(0)), ["f1", "f2"]);
    }
}
