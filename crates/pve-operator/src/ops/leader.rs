//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leader election does it
//! (kube-rs 5 has no elector of its own).
//!
//! * Acquire: a Lease that does not exist is created; one without a holder (released) is taken
//!   at once; one held by another instance is taken only after its record (holder, renew time)
//!   has not changed for `leaseDurationSeconds` as measured by this instance's own clock since
//!   it first saw that record, so that clock skew between replicas does not matter.
//! * Every write carries the `resourceVersion` that was read (an update, not an apply), so two
//!   candidates can never both win: the second write gets 409 Conflict.
//! * The leader renews every `renew_every` (and sooner after a failed attempt). Leadership is
//!   lost when the Lease names another holder, or when the renew deadline (two thirds of the
//!   lease duration) has passed since the last successful renewal began. The deadline is a timer
//!   of its own: a renewal call that hangs is abandoned when it fires, so it cannot hold the
//!   leader past it.
//! * The bound: a renewal that succeeds wrote a record no earlier than the moment it began
//!   (`last_renewal`), and a standby counts the lease duration from when it first sees that
//!   record. So the old leader, which stops all work at `last_renewal + renew_deadline`, has
//!   stopped at least `lease_duration - renew_deadline` (5 s with the defaults, less the drift of
//!   the two clocks' rates) before a standby may take over at `last_renewal + lease_duration`.
//! * On graceful shutdown the leader releases the Lease (empty holder), so that a standby takes
//!   over at its next attempt instead of after the lease duration.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// How a candidate takes part in the election.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// The Lease's name.
    pub name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// This instance's identity (`holderIdentity`): the pod name in a cluster.
    pub identity: String,
    /// `leaseDurationSeconds`: how long a standby waits for a silent leader.
    pub lease_duration: Duration,
    /// How often the leader renews, and how often a standby tries to acquire.
    pub renew_every: Duration,
}

impl LeaseSettings {
    /// How long the leader keeps leading without a successful renewal.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration * 2 / 3
    }
}

/// Why leadership ended.
#[derive(Debug, thiserror::Error)]
pub enum LeadershipLost {
    /// Another instance holds the Lease now.
    #[error("the Lease is held by {0} now")]
    TakenBy(String),
    /// Renewals failed for longer than the renew deadline.
    #[error("the Lease could not be renewed for {0:?}: {1}")]
    RenewalFailed(Duration, String),
}

/// One candidate of the election.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// The last record seen of another holder and when this instance first saw it.
    observed: Option<(ObservedRecord, Instant)>,
    /// When the last attempt that left this instance holding the Lease began.
    last_renewal: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ObservedRecord {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    transitions: Option<i32>,
}

/// The result of one attempt.
enum Attempt {
    /// This instance holds the Lease.
    Held,
    /// Another instance holds it.
    HeldBy(String),
}

impl LeaderElector {
    /// A candidate for the Lease in `settings`.
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
            last_renewal: None,
        }
    }

    /// The moment after which this instance must not act as the leader any more: the renew
    /// deadline after the beginning of its last successful acquisition or renewal (`None` while
    /// it has not held the Lease).
    pub fn leading_until(&self) -> Option<Instant> {
        self.last_renewal
            .map(|renewed| renewed + self.settings.renew_deadline())
    }

    /// The settings.
    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// Waits until this instance holds the Lease. Errors of the API server are logged and
    /// retried; only the caller's cancellation (dropping the future) ends the wait otherwise.
    pub async fn acquire(&mut self) {
        let mut logged_holder: Option<String> = None;
        loop {
            let began = Instant::now();
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => {
                    self.last_renewal = Some(began);
                    tracing::info!(
                        lease = %self.settings.name,
                        identity = %self.settings.identity,
                        "acquired the leader Lease"
                    );
                    return;
                }
                Ok(Attempt::HeldBy(holder)) => {
                    if logged_holder.as_deref() != Some(holder.as_str()) {
                        tracing::info!(lease = %self.settings.name, %holder, "standing by: another replica leads");
                        logged_holder = Some(holder);
                    }
                }
                Err(error) => {
                    tracing::warn!(lease = %self.settings.name, %error, "could not read or take the leader Lease; retrying")
                }
            }
            tokio::time::sleep(self.settings.renew_every).await;
        }
    }

    /// Renews the Lease until leadership is lost, and says why: returns no later than
    /// [`LeaderElector::leading_until`], measured by a timer that does not wait for a renewal
    /// call in flight (that call is abandoned). Runs for as long as the caller keeps polling it;
    /// dropping it and calling it again keeps the same deadline.
    pub async fn keep_renewing(&mut self) -> LeadershipLost {
        let mut last_error = String::from("no answer from the API server");
        let mut pause = self.settings.renew_every;
        loop {
            let until = self
                .leading_until()
                .unwrap_or_else(|| Instant::now() + self.settings.renew_deadline());
            let attempt = async {
                tokio::time::sleep(pause).await;
                let began = Instant::now();
                (began, self.try_acquire_or_renew().await)
            };
            let done = tokio::select! {
                biased;
                () = tokio::time::sleep_until(until.into()) => None,
                done = attempt => Some(done),
            };
            let Some((began, result)) = done else {
                let silent = self.last_renewal.map(|r| r.elapsed()).unwrap_or_default();
                return LeadershipLost::RenewalFailed(silent, last_error);
            };
            match result {
                Ok(Attempt::Held) => {
                    self.last_renewal = Some(began);
                    pause = self.settings.renew_every;
                }
                Ok(Attempt::HeldBy(holder)) => return LeadershipLost::TakenBy(holder),
                Err(error) => {
                    tracing::warn!(%error, "renewing the leader Lease failed; retrying");
                    last_error = error.to_string();
                    // Retry sooner than the regular interval: the deadline is near.
                    pause = self.settings.renew_every.min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Gives the Lease up (empty holder) if this instance still holds it, so that a standby
    /// takes over at once. Failures are logged: the Lease then simply expires.
    pub async fn release(&mut self) {
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
                return Ok::<bool, kube::Error>(false);
            };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
                return Ok(false);
            }
            spec.holder_identity = None;
            spec.acquire_time = None;
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            spec.lease_duration_seconds = Some(1);
            self.api
                .replace(&self.settings.name, &PostParams::default(), &lease)
                .await?;
            Ok(true)
        }
        .await;
        match result {
            Ok(true) => tracing::info!(lease = %self.settings.name, "released the leader Lease"),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "could not release the leader Lease; it expires instead")
            }
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.settings.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// One read and at most one write: create, renew or take over the Lease.
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let me = self.settings.identity.clone();
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(self.duration_seconds()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Held),
                Err(kube::Error::Api(status)) if status.is_already_exists() => {
                    Ok(Attempt::HeldBy("(another candidate, just now)".into()))
                }
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = ObservedRecord {
            holder: holder.clone(),
            renew_time: spec.renew_time.as_ref().map(|t| t.0),
            transitions: spec.lease_transitions,
        };
        let mut new_spec = spec.clone();
        match holder {
            Some(h) if h == me => {
                // Renewal.
                new_spec.renew_time = Some(now);
                new_spec.lease_duration_seconds = Some(self.duration_seconds());
            }
            Some(other) => {
                // Someone else's: expired only after its record stood still for its duration.
                let first_seen = match &self.observed {
                    Some((seen, at)) if *seen == record => *at,
                    _ => {
                        let at = Instant::now();
                        self.observed = Some((record, at));
                        at
                    }
                };
                let duration = Duration::from_secs(
                    u64::try_from(spec.lease_duration_seconds.unwrap_or(0).max(1)).unwrap_or(1),
                );
                if first_seen.elapsed() < duration {
                    return Ok(Attempt::HeldBy(other));
                }
                tracing::info!(previous = %other, "the leader Lease expired; taking it over");
                new_spec = take_over(&spec, &me, now, self.duration_seconds());
            }
            None => {
                new_spec = take_over(&spec, &me, now, self.duration_seconds());
            }
        }
        lease.spec = Some(new_spec);
        // `replace` sends the resourceVersion that was read: a concurrent write makes this fail.
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.observed = None;
                Ok(Attempt::Held)
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                Ok(Attempt::HeldBy("(a concurrent writer)".into()))
            }
            Err(error) => Err(error),
        }
    }
}

fn take_over(previous: &LeaseSpec, me: &str, now: MicroTime, duration: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(duration),
        acquire_time: Some(now.clone()),
        renew_time: Some(now),
        lease_transitions: Some(previous.lease_transitions.unwrap_or(0).saturating_add(1)),
        ..LeaseSpec::default()
    }
}
