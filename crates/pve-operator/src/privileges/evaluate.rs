//! Checking needs against the privileges Proxmox says the credentials hold: the evaluation behind
//! `pve-operator preflight`, the ProxmoxCluster `PrivilegesSufficient` condition, and the check a
//! MachineRequest makes before it sends a request that Proxmox would refuse.
//!
//! Proxmox answers `GET /access/permissions?path=P` with the effective privileges on exactly `P`
//! (ACL inheritance, groups, pools, and the intersection of a privilege-separated token with its
//! user already applied), so each distinct path of the needs is asked once. A need on a path that
//! stands for its children (`/vms`, `/nodes`, and the parents that replace a `<placeholder>`) also
//! needs the propagate flag, because Proxmox checks the children (`/vms/<vmid>`).

use std::collections::BTreeMap;
use std::fmt;

use pve_client::api::access::Permissions;
use pve_client::{PveClient, PveError};
use serde::Serialize;

use super::{DANGEROUS_PRIVILEGES, Identity, Need, Privsep, Subject};

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WarningKind {
    /// A privilege from [`DANGEROUS_PRIVILEGES`] that nothing needs.
    DangerousPrivilege,
    /// A needed privilege held on a path that stands for its children, without propagation.
    NotPropagated,
    /// An API token without privilege separation.
    TokenWithoutPrivsep,
    /// `root@pam` (or one of its tokens).
    RootUser,
    /// A password login instead of an API token.
    PasswordLogin,
    /// TLS verification is off.
    InsecureSkipVerify,
}

/// Something that works but should not be so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    /// What kind of problem.
    pub kind: WarningKind,
    /// The privilege concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privilege: Option<String>,
    /// The (first) ACL path concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Further paths where the same privilege is held.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_on: Vec<String>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Warning {
    fn about(kind: WarningKind, message: String) -> Self {
        Self {
            kind,
            privilege: None,
            path: None,
            also_on: Vec::new(),
            message,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Who the credentials are (`API token u@pve!t` or `user u@pve (password login)`).
    pub identity: String,
    /// A token's privilege separation and how it was found out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privsep: Option<Privsep>,
    /// Needed privileges the credentials lack.
    pub missing: Vec<Need>,
    /// Needed privileges the credentials hold.
    pub present: Vec<Need>,
    /// Dangerous surplus privileges and risky settings.
    pub warnings: Vec<Warning>,
}

impl Report {
    /// Whether every needed privilege is held.
    pub fn sufficient(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Checks `needs` against what Proxmox says the credentials hold: one
/// `GET /access/permissions` without a path (every path with an ACL, for the surplus), then one
/// with `path=` for each distinct path of the needs (exact, including inherited privileges).
/// `<placeholder>` paths are checked on their parent (e.g. `/storage/<storage>` on `/storage`:
/// every storage).
pub async fn check(pve: &PveClient, subject: &Subject, needs: &[Need]) -> Result<Report, PveError> {
    let needs = concrete_needs(needs);
    let mut held = pve.permissions(None, None).await?;
    let mut paths: Vec<&str> = needs.iter().map(|n| n.path.as_str()).collect();
    paths.sort_unstable();
    paths.dedup();
    for path in paths {
        let on_path = pve.permissions(Some(path), None).await?;
        held.0.insert(
            path.to_string(),
            on_path.0.get(path).cloned().unwrap_or_default(),
        );
    }
    Ok(evaluate(&needs, &held, subject))
}

/// The pure part of [`check`]: sorts `needs` into missing and present given the privileges
/// `held` (path → privilege → propagate), and collects the warnings.
pub fn evaluate(needs: &[Need], held: &Permissions, subject: &Subject) -> Report {
    let needs = concrete_needs(needs);
    let mut missing = Vec::new();
    let mut present = Vec::new();
    let mut warnings = Vec::new();
    for need in needs {
        let on_path = held.0.get(&need.path);
        match holds(
            on_path.map(|m| m.iter().map(|(k, v)| (k.as_str(), v.0))),
            &need,
        ) {
            Holds::Yes => present.push(need),
            Holds::NotPropagated => {
                warnings.push(Warning {
                    kind: WarningKind::NotPropagated,
                    privilege: Some(need.privilege.to_string()),
                    path: Some(need.path.clone()),
                    also_on: Vec::new(),
                    message: format!(
                        "{} is granted on {} without propagation, but Proxmox checks it on the paths below (e.g. /vms/<vmid>); set the ACL with propagate=1",
                        need.privilege, need.path
                    ),
                });
                missing.push(need);
            }
            Holds::No => missing.push(need),
        }
    }
    let uses_pool = missing
        .iter()
        .chain(&present)
        .any(|n| n.path.starts_with("/pool/"));
    let identity = &subject.identity;
    if identity.userid() == "root@pam" {
        warnings.push(Warning::about(
            WarningKind::RootUser,
            match identity {
                Identity::Token { token_id } => format!(
                    "{token_id} is a token of root@pam: without privilege separation it can do anything, and it never has less than root allows; use a dedicated user (pve-operator privileges prints the commands)"
                ),
                Identity::User { .. } => "root@pam can do anything on the cluster, including everything a leaked credential should not; use a dedicated user with a privilege-separated token (pve-operator privileges prints the commands)".to_string(),
            },
        ));
    }
    if !(identity.userid() == "root@pam" && matches!(identity, Identity::User { .. })) {
        // Root holds every privilege everywhere: the root warning says it all.
        for (privilege, what) in DANGEROUS_PRIVILEGES {
            if *privilege == "Pool.Allocate" && uses_pool {
                continue;
            }
            // Needed where a feature asks for it (Datastore.Allocate on an image storage with
            // deletionPolicy: Delete): not surplus there.
            let needed_on = |path: &str| {
                missing
                    .iter()
                    .chain(&present)
                    .any(|n| n.privilege == *privilege && n.path == path)
            };
            let paths: Vec<String> = held
                .0
                .iter()
                .filter(|(path, privileges)| {
                    privileges.contains_key(*privilege) && !needed_on(path)
                })
                .map(|(path, _)| path.clone())
                .collect();
            if let Some((first, rest)) = paths.split_first() {
                warnings.push(Warning {
                    kind: WarningKind::DangerousPrivilege,
                    privilege: Some(privilege.to_string()),
                    path: Some(first.clone()),
                    also_on: rest.to_vec(),
                    message: format!(
                        "{privilege} on {first}{}: it {what}, and pve-operator never needs it{}; remove it from the roles of the credentials",
                        if rest.is_empty() {
                            String::new()
                        } else {
                            format!(" (and {} more paths)", rest.len())
                        },
                        if *privilege == "Pool.Allocate" {
                            " (no request uses a pool)"
                        } else {
                            ""
                        }
                    ),
                });
            }
        }
    }
    if let (
        Identity::Token { token_id },
        Some(Privsep {
            privsep: Some(false),
            ..
        }),
    ) = (identity, &subject.privsep)
    {
        warnings.push(Warning::about(
            WarningKind::TokenWithoutPrivsep,
            format!(
                "{token_id} has no privilege separation: it holds every privilege of {}, whatever its own ACLs say; recreate it with `pveum user token add {} {} --privsep 1` and give it its own ACLs",
                identity.userid(),
                identity.userid(),
                identity.token_name().unwrap_or_default()
            ),
        ));
    }
    if let Identity::User { userid } = identity {
        warnings.push(Warning::about(
            WarningKind::PasswordLogin,
            format!(
                "{userid} logs in with a password: a password opens the web UI too and cannot be limited; use a privilege-separated API token (tokenID/tokenSecret)"
            ),
        ));
    }
    if subject.insecure_skip_verify {
        warnings.push(Warning::about(
            WarningKind::InsecureSkipVerify,
            "insecureSkipVerify is set: the Proxmox certificate is not verified, so anyone on the network path can read the credentials; pin the certificate's fingerprint or give a CA bundle instead".to_string(),
        ));
    }
    Report {
        identity: identity.to_string(),
        privsep: subject.privsep.clone(),
        missing,
        present,
        warnings,
    }
}

/// Whether a privilege is held where it is needed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Holds {
    Yes,
    No,
    /// Held on a path that stands for its children, but without propagation.
    NotPropagated,
}

/// Whether `need` is held given the privileges (with their propagate flags) on its path.
pub(super) fn holds<'a>(
    on_path: Option<impl Iterator<Item = (&'a str, bool)>>,
    need: &Need,
) -> Holds {
    let flag = on_path.and_then(|mut privileges| {
        privileges
            .find(|(privilege, _)| *privilege == need.privilege)
            .map(|(_, propagate)| propagate)
    });
    match flag {
        None => Holds::No,
        Some(false) if stands_for_children(&need.path) => Holds::NotPropagated,
        Some(_) => Holds::Yes,
    }
}

/// Paths whose privileges matter for the objects below them: Proxmox checks `/vms/<vmid>`,
/// `/nodes/<node>`, `/storage/<id>` and `/sdn/zones/localnetwork/<bridge>`.
fn stands_for_children(path: &str) -> bool {
    matches!(
        path,
        "/vms" | "/nodes" | "/storage" | "/sdn/zones/localnetwork" | "/sdn/zones" | "/sdn"
    )
}

/// Replaces each `<placeholder>` path by its parent (every storage, every bridge) and merges
/// the needs that then coincide.
pub fn concrete_needs(needs: &[Need]) -> Vec<Need> {
    let mut merged: BTreeMap<(String, &'static str), String> = BTreeMap::new();
    for need in needs {
        let path = match need.path.find("/<") {
            Some(cut) if cut > 0 => need.path[..cut].to_string(),
            Some(_) => "/".to_string(),
            None => need.path.clone(),
        };
        let reasons = merged.entry((path, need.privilege)).or_default();
        for reason in need.needed_for.split("; ") {
            if !reasons.split("; ").any(|r| r == reason) {
                if !reasons.is_empty() {
                    reasons.push_str("; ");
                }
                reasons.push_str(reason);
            }
        }
    }
    merged
        .into_iter()
        .map(|((path, privilege), needed_for)| Need {
            privilege,
            path,
            needed_for,
        })
        .collect()
}

#[cfg(test)]
mod tests;
