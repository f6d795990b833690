//! The status conditions of every pve-operator kind (`metav1.Condition`, as `kubectl wait
//! --for=condition=Ready` reads them): their types, and one way to read and set them, used by the
//! controllers, the CLI, the tests and any operator that watches these resources.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::{MachineRequestStatus, ProxmoxClusterStatus, ProxmoxIdentityStatus};

/// Condition types.
pub mod types {
    /// The resource is as specified (a MachineRequest's VM exists and matches its spec; a
    /// ProxmoxCluster or ProxmoxIdentity can be used).
    pub const READY: &str = "Ready";
    /// A MachineRequest's VM has been created.
    pub const PROVISIONED: &str = "Provisioned";
    /// A MachineRequest's VM's power state matches the spec.
    pub const POWERED: &str = "PoweredOn";
    /// Changes to a MachineRequest's VM wait for a restart of the VM.
    pub const RESTART_REQUIRED: &str = "RestartRequired";
    /// The Proxmox token has the privileges the resource needs.
    pub const PRIVILEGES: &str = "PrivilegesSufficient";
    /// The Proxmox task in flight has run past the controller's `--task-deadline`.
    pub const TASK_OVERDUE: &str = "TaskOverdue";
    /// Proxmox accepted the credentials.
    pub const CREDENTIALS: &str = "CredentialsValid";
}

/// Condition `type_` of `conditions`, if set.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether condition `type_` is set and True.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Condition `type_` as it is now: True when `value`, observed at `generation`, its transition
/// time kept from `previous` when that had the same status (otherwise now).
pub fn condition(
    previous: Option<&Condition>,
    generation: Option<i64>,
    type_: &str,
    value: bool,
    reason: &str,
    message: impl Into<String>,
) -> Condition {
    let status = if value { "True" } else { "False" };
    let last_transition_time = previous
        .filter(|p| p.status == status)
        .map(|p| p.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// Sets (or updates in place) condition `type_` in `conditions`, keeping its transition time
/// when its status does not change.
pub fn set(
    conditions: &mut Vec<Condition>,
    generation: Option<i64>,
    type_: &str,
    value: bool,
    reason: &str,
    message: impl Into<String>,
) {
    let position = conditions.iter().position(|c| c.type_ == type_);
    let new = condition(
        position.map(|i| &conditions[i]),
        generation,
        type_,
        value,
        reason,
        message,
    );
    match position {
        Some(i) => conditions[i] = new,
        None => conditions.push(new),
    }
}

/// Removes condition `type_`.
pub fn clear(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// A status with conditions: reading them by type.
pub trait HasConditions {
    /// The conditions.
    fn conditions(&self) -> &[Condition];

    /// Condition `type_`, if set.
    fn condition(&self, type_: &str) -> Option<&Condition> {
        find(self.conditions(), type_)
    }

    /// Whether condition `type_` is True.
    fn is_true(&self, type_: &str) -> bool {
        is_true(self.conditions(), type_)
    }

    /// Whether the `Ready` condition is True.
    fn is_ready(&self) -> bool {
        self.is_true(types::READY)
    }
}

impl HasConditions for MachineRequestStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl HasConditions for ProxmoxClusterStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl HasConditions for ProxmoxIdentityStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl HasConditions for crate::ProxmoxImageStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_a_condition_keeps_its_transition_time_only_while_its_status_stays() {
        let mut list = Vec::new();
        set(
            &mut list,
            Some(1),
            types::READY,
            false,
            "Provisioning",
            "creating",
        );
        let mut earlier = list.clone();
        earlier[0].last_transition_time = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        set(
            &mut earlier,
            Some(2),
            types::READY,
            false,
            "Still",
            "waiting",
        );
        assert_eq!(earlier.len(), 1);
        assert_eq!(
            earlier[0].last_transition_time.0,
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            "same status: the transition time stays"
        );
        assert_eq!(
            (earlier[0].reason.as_str(), earlier[0].observed_generation),
            ("Still", Some(2))
        );
        set(
            &mut earlier,
            Some(2),
            types::READY,
            true,
            "AsSpecified",
            "done",
        );
        assert_ne!(
            earlier[0].last_transition_time.0,
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            "a new status is a new transition"
        );
        assert!(is_true(&earlier, types::READY));
        assert!(!is_true(&earlier, types::PROVISIONED));
        clear(&mut earlier, types::READY);
        assert!(find(&earlier, types::READY).is_none());
    }
}
