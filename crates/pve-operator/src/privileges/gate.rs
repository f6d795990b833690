//! The gate before each step of a MachineRequest ([`Step`]): the controller sends nothing that
//! the credentials lack a privilege for ([`require`], [`PrivilegeError`]), and logs a new
//! connection's warnings once ([`log_warnings`]).

use pve_client::{PveError, PveRelease};
use pve_operator_api::MachineRequestSpec;

use super::evaluate::{Holds, holds};
use super::{Feature, NamedImages, Need, VmScope, check, concrete_needs, needs_of_requests};
use crate::proxmox::ClusterRuntime;

/// What the controller is about to do for a MachineRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Create the VM: everything the request will ever need is checked, so that no VM is
    /// created that the controller could then not configure, start or delete.
    Create,
    /// Start, shut down or stop the VM.
    Power,
    /// Destroy the VM.
    Delete,
}

impl Step {
    /// What the step does, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Step::Create => "creating the VM",
            Step::Power => "changing the VM's power state",
            Step::Delete => "deleting the VM",
        }
    }

    /// The needs of this step for `spec` (naming `images`) on `release`.
    pub fn needs(
        self,
        spec: &MachineRequestSpec,
        images: &NamedImages,
        release: PveRelease,
    ) -> Vec<Need> {
        let scope = spec
            .pool
            .clone()
            .map(VmScope::Pool)
            .unwrap_or(VmScope::AllVms);
        match self {
            Step::Create => needs_of_requests(std::slice::from_ref(spec), images, release),
            Step::Power => Feature::Power.needs(&scope, release),
            Step::Delete => Feature::Delete.needs(&scope, release),
        }
    }
}

/// The needs of `step` for `spec` (naming `images`) that the connection's credentials lack,
/// from the cached permissions. Empty when everything is held, or when this Proxmox cannot
/// report permissions (then Proxmox's own refusal is reported, as for any 403).
pub async fn missing_privileges(
    conn: &ClusterRuntime,
    spec: &MachineRequestSpec,
    images: &NamedImages,
    step: Step,
) -> Result<Vec<Need>, PveError> {
    let release = conn.release.get(&conn.pve).await?;
    missing_needs(conn, &step.needs(spec, images, release)).await
}

/// Which of `needs` the connection's credentials lack, from the cached permissions (empty when
/// this Proxmox cannot report permissions).
pub async fn missing_needs(conn: &ClusterRuntime, needs: &[Need]) -> Result<Vec<Need>, PveError> {
    let mut missing = Vec::new();
    for need in concrete_needs(needs) {
        match conn.permissions.on_path(&conn.pve, &need.path).await? {
            None => return Ok(Vec::new()),
            Some(held) => {
                if holds(Some(held.iter().map(|(k, v)| (k.as_str(), *v))), &need) != Holds::Yes {
                    missing.push(need);
                }
            }
        }
    }
    Ok(missing)
}

/// Logs the warnings of a new connection (dangerous surplus privileges, root@pam, a token
/// without privilege separation, insecure TLS) once, as `pve-operator preflight` would show them.
/// Failures to check are logged at debug level: the requests' own checks report what matters.
pub async fn log_warnings(conn: std::sync::Arc<ClusterRuntime>) {
    let mut subject = conn.permissions.subject().clone();
    let report = match subject.discover_privsep(&conn.pve).await {
        Ok(()) => check(&conn.pve, &subject, &[]).await,
        Err(error) => Err(error),
    };
    match report {
        Ok(report) => {
            for warning in report.warnings {
                tracing::warn!(cluster = %conn.key, kind = ?warning.kind, "{}", warning.message);
            }
        }
        Err(error) => {
            tracing::debug!(cluster = %conn.key, %error, "could not check the credentials' privileges")
        }
    }
}

/// Why a step may not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// The credentials lack privileges the step needs; nothing was sent.
    #[error("{}", missing_text(*step, missing))]
    Missing {
        /// The step that was not taken.
        step: Step,
        /// What is missing (never empty).
        missing: Vec<Need>,
    },
    /// The privileges could not be read.
    #[error("reading the credentials' privileges (GET /access/permissions): {0}")]
    Unreadable(#[source] PveError),
}

fn missing_text(step: Step, missing: &[Need]) -> String {
    let list: Vec<String> = missing
        .iter()
        .map(|n| format!("{} on {} (for {})", n.privilege, n.path, n.needed_for))
        .collect();
    format!(
        "the Proxmox credentials lack {}; {} was not attempted. Grant {} (`pve-operator privileges` prints the pveum commands, `pve-operator preflight` checks them); the controller checks again in a few minutes",
        list.join(", "),
        step.describe(),
        if missing.len() == 1 { "it" } else { "them" }
    )
}

/// Fails with [`PrivilegeError::Missing`] when the credentials lack a privilege `step` needs.
pub async fn require(
    conn: &ClusterRuntime,
    spec: &MachineRequestSpec,
    step: Step,
) -> Result<(), PrivilegeError> {
    require_with_images(conn, spec, &[], step).await
}

/// Like [`require`], for a spec that names `images`.
pub async fn require_with_images(
    conn: &ClusterRuntime,
    spec: &MachineRequestSpec,
    images: &NamedImages,
    step: Step,
) -> Result<(), PrivilegeError> {
    let missing = missing_privileges(conn, spec, images, step)
        .await
        .map_err(PrivilegeError::Unreadable)?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PrivilegeError::Missing { step, missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_needs_of_power_and_delete_follow_the_pool() {
        let spec: MachineRequestSpec = serde_json::from_value(serde_json::json!({
            "memory": { "sizeMiB": 512 }, "pool": "k8s", "boot": { "network": {} },
        }))
        .unwrap_or_else(|e| panic!("spec: {e}"));
        let power = Step::Power.needs(&spec, &[], PveRelease::NEWEST_CHECKED);
        assert_eq!(
            (power[0].privilege, power[0].path.as_str()),
            ("VM.PowerMgmt", "/pool/k8s")
        );
        let delete = Step::Delete.needs(&spec, &[], PveRelease::NEWEST_CHECKED);
        assert_eq!(delete[0].privilege, "VM.Allocate");
        let missing = PrivilegeError::Missing {
            step: Step::Delete,
            missing: delete,
        };
        let text = missing.to_string();
        assert!(
            text.contains("VM.Allocate on /pool/k8s")
                && text.contains("deleting the VM was not attempted"),
            "{text}"
        );
    }
}
