//! Leader election through a coordination.k8s.io/v1 Lease, as upstream's
//! client-go leaderelection: the holder renews `renewTime` every retry period;
//! a candidate takes the lease only once `renewTime + leaseDurationSeconds`
//! has passed; every write carries the resourceVersion it read, so two
//! candidates never both win the same round.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

/// Lease timing.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// How long a lease stays valid after its last renewal.
    pub lease_duration: Duration,
    /// A leader that could not renew for this long steps down; must be
    /// shorter than `lease_duration` so the old leader stops before a new one can start.
    pub renew_deadline: Duration,
    /// Pause between acquire/renew attempts.
    pub retry_period: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            lease_duration: Duration::from_secs(8),
            renew_deadline: Duration::from_secs(5),
            retry_period: Duration::from_secs(1),
        }
    }
}

/// What one acquire-or-renew round found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// This process holds the lease (took it or renewed it).
    Held,
    /// Someone else holds a valid lease, or won the race for it.
    Lost,
}

/// Campaigns for, and keeps, one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    settings: LeaseSettings,
}

impl LeaderElector {
    /// An elector for Lease `namespace/name` under `identity`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        settings: LeaseSettings,
    ) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            settings,
        }
    }

    /// Waits until this process holds the lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Round::Held) => return,
                Ok(Round::Lost) => {}
                Err(e) => tracing::debug!(error = %e, "leader election: acquire attempt failed"),
            }
            tokio::time::sleep(self.settings.retry_period).await;
        }
    }

    /// Renews the lease until it is lost (taken by another, or not renewed
    /// within the renew deadline), then returns.
    pub async fn hold(&mut self) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.settings.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(Round::Held) => last_renewal = Instant::now(),
                Ok(Round::Lost) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: renewal failed");
                    if last_renewal.elapsed() >= self.settings.renew_deadline {
                        return;
                    }
                }
            }
        }
    }

    /// One round: create the lease, take it over if expired, or renew it if ours.
    pub async fn try_acquire_or_renew(&self) -> Result<Round, kube::Error> {
        let now = jiff::Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.claim(None, now)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Round::Held),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Round::Lost),
                Err(e) => Err(e),
            };
        };
        if !self.may_take(lease.spec.as_ref(), now) {
            return Ok(Round::Lost);
        }
        lease.spec = Some(self.claim(lease.spec.as_ref(), now));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(Round::Held),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Round::Lost),
            Err(e) => Err(e),
        }
    }

    /// True when the lease is ours, unheld, or expired at `now`.
    fn may_take(&self, spec: Option<&LeaseSpec>, now: jiff::Timestamp) -> bool {
        let Some(spec) = spec else { return true };
        let holder = spec.holder_identity.as_deref().unwrap_or("");
        if holder.is_empty() || holder == self.identity {
            return true;
        }
        let Some(renewed) = spec.renew_time.as_ref() else {
            return true;
        };
        let secs = spec.lease_duration_seconds.unwrap_or(0).max(0);
        let expires = renewed.0.as_second().saturating_add(i64::from(secs));
        now.as_second() > expires
    }

    /// The spec this process writes when taking or renewing the lease.
    fn claim(&self, old: Option<&LeaseSpec>, now: jiff::Timestamp) -> LeaseSpec {
        let ours = old.and_then(|s| s.holder_identity.as_deref()) == Some(self.identity.as_str());
        let transitions = old.and_then(|s| s.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.settings.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: if ours {
                old.and_then(|s| s.acquire_time.clone())
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if ours || old.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..LeaseSpec::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elector(id: &str) -> LeaderElector {
        // A client is never called by the pure decision functions under test.
        let cfg = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let client = kube::Client::try_from(cfg).unwrap();
        LeaderElector::new(client, "kube-system", "l", id, LeaseSettings::default())
    }

    fn spec(holder: &str, renewed_secs_ago: i64, duration: i32) -> LeaseSpec {
        let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(renewed_secs_ago);
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(t)),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[tokio::test]
    async fn a_valid_lease_of_another_holder_is_not_taken() {
        let e = elector("b");
        assert!(!e.may_take(Some(&spec("a", 1, 8)), jiff::Timestamp::now()));
    }

    #[tokio::test]
    async fn an_expired_lease_or_our_own_is_taken() {
        let e = elector("b");
        assert!(e.may_take(Some(&spec("a", 20, 8)), jiff::Timestamp::now()));
        assert!(e.may_take(Some(&spec("b", 1, 8)), jiff::Timestamp::now()));
        assert!(e.may_take(None, jiff::Timestamp::now()));
    }

    #[tokio::test]
    async fn taking_over_counts_a_transition_and_renewing_does_not() {
        let e = elector("b");
        let now = jiff::Timestamp::now();
        let mut old = spec("a", 20, 8);
        old.lease_transitions = Some(3);
        assert_eq!(e.claim(Some(&old), now).lease_transitions, Some(4));
        let mut mine = spec("b", 1, 8);
        mine.lease_transitions = Some(3);
        assert_eq!(e.claim(Some(&mine), now).lease_transitions, Some(3));
    }
}
