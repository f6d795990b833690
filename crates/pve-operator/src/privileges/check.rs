//! Checking needs against the privileges Proxmox says the credentials hold: the evaluation behind
//! `pve-operator preflight`, the ProxmoxCluster `PrivilegesSufficient` condition, and the check a
//! MachineRequest makes before it sends a request that Proxmox would refuse.
//!
//! Proxmox answers `GET /access/permissions?path=P` with the effective privileges on exactly `P`
//! (ACL inheritance, groups, pools, and the intersection of a privilege-separated token with its
//! user already applied), so each distinct path of the needs is asked once. A need on a path that
//! stands for its children (`/vms`, `/nodes`, and the parents that replace a `<placeholder>`) also
//! needs the propagate flag, because Proxmox checks the children (`/vms/<vmid>`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use pve_client::api::access::Permissions;
use pve_client::request::{ApiRequest, Method, Params};
use pve_client::{Credentials, ErrorKind, PveClient, PveConfig, PveError, PveRelease, TlsTrust};
use pve_operator_api::MachineRequestSpec;
use serde::Serialize;

use super::{DANGEROUS_PRIVILEGES, Feature, Need, VmScope, needs_for_specs};
use crate::proxmox::Connection;

/// Who the credentials are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// An API token, `USER@REALM!NAME`.
    Token {
        /// The full token id.
        token_id: String,
    },
    /// A user logging in with a password (tickets).
    User {
        /// `USER@REALM`.
        userid: String,
    },
}

impl Identity {
    /// The identity of a connection configuration.
    pub fn of(config: &PveConfig) -> Self {
        match &config.credentials {
            Credentials::Token(token) => Identity::Token {
                token_id: token.token_id.clone(),
            },
            Credentials::Password { userid, .. } => Identity::User {
                userid: userid.clone(),
            },
        }
    }

    /// The user (the token's owner for a token).
    pub fn userid(&self) -> &str {
        match self {
            Identity::Token { token_id } => token_id.split_once('!').map_or(token_id, |(u, _)| u),
            Identity::User { userid } => userid,
        }
    }

    /// The token's name (after the `!`), for a token.
    pub fn token_name(&self) -> Option<&str> {
        match self {
            Identity::Token { token_id } => token_id.split_once('!').map(|(_, name)| name),
            Identity::User { .. } => None,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Token { token_id } => write!(f, "API token {token_id}"),
            Identity::User { userid } => write!(f, "user {userid} (password login)"),
        }
    }
}

/// Whether a token has privilege separation, and how that was found out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Privsep {
    /// `Some(true)`: separated; `Some(false)`: the token holds all of its user's privileges;
    /// `None`: could not be found out.
    pub privsep: Option<bool>,
    /// How it was found out (or why not).
    pub how: String,
}

/// What a check knows about the credentials besides their privileges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Who they are.
    pub identity: Identity,
    /// Whether TLS verification is off (`insecureSkipVerify`).
    pub insecure_skip_verify: bool,
    /// The token's privilege separation, once asked ([`Subject::discover_privsep`]).
    pub privsep: Option<Privsep>,
}

impl Subject {
    /// The subject of a connection configuration (privilege separation not asked yet).
    pub fn of(config: &PveConfig) -> Self {
        Self {
            identity: Identity::of(config),
            insecure_skip_verify: matches!(config.tls, TlsTrust::InsecureSkipVerify),
            privsep: None,
        }
    }

    /// Asks Proxmox whether the token is privilege-separated: first
    /// `GET /access/users/{user}/token/{name}`, then the user's token list in
    /// `GET /access/users/{user}`. PVE lets a token read neither about itself unless it holds
    /// `User.Modify` (or, for the second, `Sys.Audit`) on `/access/groups`, so a least-privilege
    /// token usually gets "unknown" here, with that explanation. Nothing to do for a user.
    pub async fn discover_privsep(&mut self, pve: &PveClient) -> Result<(), PveError> {
        let (Some(name), userid) = (self.identity.token_name(), self.identity.userid()) else {
            return Ok(());
        };
        let token_info = ApiRequest::new(
            Method::Get,
            "/access/users/{userid}/token/{tokenid}",
            &[("userid", userid), ("tokenid", name)],
            Params::new(),
        );
        let found = match pve.call::<serde_json::Value>(&token_info).await {
            Ok(info) => flag(&info["privsep"]).map(|p| {
                (
                    p,
                    format!("read from GET /access/users/{userid}/token/{name}"),
                )
            }),
            Err(e) if refused(&e) => {
                let user = ApiRequest::new(
                    Method::Get,
                    "/access/users/{userid}",
                    &[("userid", userid)],
                    Params::new(),
                );
                match pve.call::<serde_json::Value>(&user).await {
                    Ok(info) => flag(&info["tokens"][name]["privsep"])
                        .map(|p| (p, format!("read from GET /access/users/{userid}"))),
                    Err(e) if refused(&e) => None,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        self.privsep = Some(match found {
            Some((privsep, how)) => Privsep {
                privsep: Some(privsep),
                how,
            },
            None => Privsep {
                privsep: None,
                how: format!(
                    "Proxmox lets a token read its own settings only with User.Modify or Sys.Audit on /access/groups, which this one lacks; check on a node with `pveum user token list {userid}`"
                ),
            },
        });
        Ok(())
    }
}

/// A refusal that means "you may not read this" (403, or a missing user/token object).
fn refused(error: &PveError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::PermissionDenied | ErrorKind::NotFound
    )
}

/// A Proxmox boolean (`1`, `"1"`, `true`).
fn flag(value: &serde_json::Value) -> Option<bool> {
    match value {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::Number(n) => n.as_u64().map(|n| n != 0),
        serde_json::Value::String(s) => match s.as_str() {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

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
            let paths: Vec<String> = held
                .0
                .iter()
                .filter(|(_, privileges)| privileges.contains_key(*privilege))
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
enum Holds {
    Yes,
    No,
    /// Held on a path that stands for its children, but without propagation.
    NotPropagated,
}

fn holds<'a>(on_path: Option<impl Iterator<Item = (&'a str, bool)>>, need: &Need) -> Holds {
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

    /// The needs of this step for `spec` on `release`.
    pub fn needs(self, spec: &MachineRequestSpec, release: PveRelease) -> Vec<Need> {
        let scope = spec
            .pool
            .clone()
            .map(VmScope::Pool)
            .unwrap_or(VmScope::AllVms);
        match self {
            Step::Create => needs_for_specs(std::slice::from_ref(spec), release),
            Step::Power => Feature::Power.needs(&scope, release),
            Step::Delete => Feature::Delete.needs(&scope, release),
        }
    }
}

/// The effective privileges of one connection by path, each read at most once per TTL, so a
/// reconcile's check costs nothing but a lookup.
pub struct PermissionCache {
    subject: Subject,
    ttl: Duration,
    entries: tokio::sync::Mutex<HashMap<String, (Instant, Option<Held>)>>,
}

/// Privilege → propagate flag, on one path.
type Held = BTreeMap<String, bool>;

/// How long a connection trusts what Proxmox said about its privileges.
pub const PERMISSION_CACHE_TTL: Duration = Duration::from_secs(60);

impl PermissionCache {
    /// A cache for the credentials of `config`, keeping answers for `ttl`.
    pub fn new(config: &PveConfig, ttl: Duration) -> Self {
        Self {
            subject: Subject::of(config),
            ttl,
            entries: tokio::sync::Mutex::default(),
        }
    }

    /// Who the credentials are.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The privileges (with their propagate flags) held on `path`, or `None` when this Proxmox
    /// cannot tell (`/access/permissions` not implemented).
    pub async fn on_path(&self, pve: &PveClient, path: &str) -> Result<Option<Held>, PveError> {
        let mut entries = self.entries.lock().await;
        if let Some((read_at, privileges)) = entries.get(path)
            && read_at.elapsed() < self.ttl
        {
            return Ok(privileges.clone());
        }
        let privileges = match pve.permissions(Some(path), None).await {
            Ok(permissions) => Some(
                permissions
                    .0
                    .get(path)
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.0)).collect())
                    .unwrap_or_default(),
            ),
            Err(e) if e.kind() == ErrorKind::NotImplemented => {
                tracing::warn!(path, error = %e, "this Proxmox cannot report effective permissions; requests are sent unchecked and its refusals reported");
                None
            }
            Err(e) => return Err(e),
        };
        entries.insert(path.to_string(), (Instant::now(), privileges.clone()));
        Ok(privileges)
    }
}

/// The needs of `step` for `spec` that the connection's credentials lack, from the cached
/// permissions. Empty when everything is held, or when this Proxmox cannot report permissions
/// (then Proxmox's own refusal is reported, as for any 403).
pub async fn missing_privileges(
    conn: &Connection,
    spec: &MachineRequestSpec,
    step: Step,
) -> Result<Vec<Need>, PveError> {
    let release = conn.release.get(&conn.pve).await?;
    let mut missing = Vec::new();
    for need in concrete_needs(&step.needs(spec, release)) {
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
pub async fn log_warnings(conn: std::sync::Arc<Connection>) {
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
    conn: &Connection,
    spec: &MachineRequestSpec,
    step: Step,
) -> Result<(), PrivilegeError> {
    let missing = missing_privileges(conn, spec, step)
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
    use pve_client::api::access::PropagateFlag;

    fn need(privilege: &'static str, path: &str) -> Need {
        Need {
            privilege,
            path: path.into(),
            needed_for: "test".into(),
        }
    }

    fn held(entries: &[(&str, &[(&str, bool)])]) -> Permissions {
        Permissions(
            entries
                .iter()
                .map(|(path, privileges)| {
                    (
                        path.to_string(),
                        privileges
                            .iter()
                            .map(|(p, flag)| (p.to_string(), PropagateFlag(*flag)))
                            .collect(),
                    )
                })
                .collect(),
        )
    }

    fn token(privsep: Option<bool>) -> Subject {
        Subject {
            identity: Identity::Token {
                token_id: "op@pve!ctl".into(),
            },
            insecure_skip_verify: false,
            privsep: privsep.map(|p| Privsep {
                privsep: Some(p),
                how: "test".into(),
            }),
        }
    }

    fn kinds(report: &Report) -> Vec<WarningKind> {
        report.warnings.iter().map(|w| w.kind).collect()
    }

    #[test]
    fn each_need_is_missing_or_present_on_its_own_path() {
        let needs = [
            need("VM.Allocate", "/vms"),
            need("VM.Audit", "/vms"),
            need("Datastore.AllocateSpace", "/storage/local-lvm"),
            need("SDN.Use", "/sdn/zones/localnetwork/vmbr0"),
        ];
        let held = held(&[
            ("/vms", &[("VM.Allocate", true)]),
            ("/storage/local-lvm", &[("Datastore.AllocateSpace", false)]),
            // Held on a sibling bridge does not count.
            ("/sdn/zones/localnetwork/vmbr1", &[("SDN.Use", true)]),
        ]);
        let report = evaluate(&needs, &held, &token(Some(true)));
        let names = |list: &[Need]| -> Vec<(String, String)> {
            list.iter()
                .map(|n| (n.privilege.to_string(), n.path.clone()))
                .collect()
        };
        assert_eq!(
            names(&report.present),
            [
                (
                    "Datastore.AllocateSpace".into(),
                    "/storage/local-lvm".into()
                ),
                ("VM.Allocate".into(), "/vms".into())
            ]
        );
        assert_eq!(
            names(&report.missing),
            [
                (
                    "SDN.Use".into(),
                    "/sdn/zones/localnetwork/vmbr0".to_string()
                ),
                ("VM.Audit".into(), "/vms".into())
            ]
        );
        assert!(!report.sufficient());
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }

    #[test]
    fn a_vm_privilege_on_vms_without_propagation_is_missing_with_a_warning() {
        let needs = [need("VM.Allocate", "/vms")];
        let report = evaluate(
            &needs,
            &held(&[("/vms", &[("VM.Allocate", false)])]),
            &token(Some(true)),
        );
        assert_eq!(report.missing.len(), 1);
        assert_eq!(kinds(&report), [WarningKind::NotPropagated]);
        assert!(report.warnings[0].message.contains("propagate=1"));
    }

    #[test]
    fn dangerous_surplus_privileges_are_warnings_with_every_path() {
        let report = evaluate(
            &[need("VM.Audit", "/vms")],
            &held(&[
                ("/", &[("Sys.Modify", true), ("Permissions.Modify", true)]),
                ("/nodes", &[("Sys.Modify", true)]),
                ("/vms", &[("VM.Audit", true), ("VM.Console", true)]),
            ]),
            &token(Some(true)),
        );
        assert!(report.sufficient());
        let dangerous: Vec<(String, String, Vec<String>)> = report
            .warnings
            .iter()
            .filter(|w| w.kind == WarningKind::DangerousPrivilege)
            .map(|w| {
                (
                    w.privilege.clone().unwrap_or_default(),
                    w.path.clone().unwrap_or_default(),
                    w.also_on.clone(),
                )
            })
            .collect();
        assert_eq!(
            dangerous,
            [
                ("Sys.Modify".into(), "/".into(), vec!["/nodes".to_string()]),
                ("Permissions.Modify".into(), "/".into(), vec![]),
                ("VM.Console".into(), "/vms".into(), vec![]),
            ]
        );
    }

    #[test]
    fn pool_allocate_is_flagged_only_when_no_request_uses_a_pool() {
        let held = held(&[(
            "/pool/k8s",
            &[("VM.Allocate", true), ("Pool.Allocate", true)],
        )]);
        let with_pool = evaluate(
            &[need("VM.Allocate", "/pool/k8s")],
            &held,
            &token(Some(true)),
        );
        assert!(with_pool.warnings.is_empty(), "{:?}", with_pool.warnings);
        let without = evaluate(&[need("VM.Allocate", "/vms")], &held, &token(Some(true)));
        assert_eq!(kinds(&without), [WarningKind::DangerousPrivilege]);
        assert_eq!(
            without.warnings[0].privilege.as_deref(),
            Some("Pool.Allocate")
        );
    }

    #[test]
    fn a_token_without_privsep_root_a_password_and_insecure_tls_are_warnings() {
        let report = evaluate(&[], &Permissions::default(), &token(Some(false)));
        assert_eq!(kinds(&report), [WarningKind::TokenWithoutPrivsep]);
        assert!(report.warnings[0].message.contains("--privsep 1"));
        let unknown = evaluate(&[], &Permissions::default(), &token(None));
        assert!(
            unknown.warnings.is_empty(),
            "unknown privsep is not a warning"
        );

        let root = Subject {
            identity: Identity::User {
                userid: "root@pam".into(),
            },
            insecure_skip_verify: true,
            privsep: None,
        };
        let everything = held(&[("/", &[("Sys.Modify", true), ("Sys.Console", true)])]);
        let report = evaluate(&[need("VM.Audit", "/vms")], &everything, &root);
        assert_eq!(
            kinds(&report),
            [
                WarningKind::RootUser,
                WarningKind::PasswordLogin,
                WarningKind::InsecureSkipVerify
            ],
            "root's surplus is summed up by one warning"
        );
        let root_token = Subject {
            identity: Identity::Token {
                token_id: "root@pam!ci".into(),
            },
            ..token(Some(true))
        };
        let report = evaluate(&[], &everything, &root_token);
        assert_eq!(report.warnings[0].kind, WarningKind::RootUser);
        assert!(report.warnings.len() == 3, "and each dangerous privilege");
    }

    #[test]
    fn placeholder_paths_are_checked_on_their_parent_with_merged_reasons() {
        let needs = [
            Need {
                needed_for: "disks".into(),
                ..need("Datastore.AllocateSpace", "/storage/<storage>")
            },
            Need {
                needed_for: "cloud-init".into(),
                ..need("Datastore.AllocateSpace", "/storage/<template's storage>")
            },
            need("SDN.Use", "/sdn/zones/localnetwork/<bridge>"),
        ];
        let concrete = concrete_needs(&needs);
        assert_eq!(concrete.len(), 2);
        assert_eq!(concrete[0].path, "/sdn/zones/localnetwork");
        assert_eq!(concrete[1].path, "/storage");
        assert_eq!(concrete[1].needed_for, "disks; cloud-init");
        // Propagation is needed there: Proxmox checks /storage/<id>.
        let report = evaluate(
            &needs,
            &held(&[("/storage", &[("Datastore.AllocateSpace", false)])]),
            &token(Some(true)),
        );
        assert_eq!(report.missing.len(), 2);
    }

    #[test]
    fn identities_know_their_user_and_token() {
        let token = Identity::Token {
            token_id: "op@pve!ctl".into(),
        };
        assert_eq!(
            (token.userid(), token.token_name()),
            ("op@pve", Some("ctl"))
        );
        assert_eq!(token.to_string(), "API token op@pve!ctl");
        let config = PveConfig::from_yaml_str(
            "proxmox:\n  url: https://pve:8006\n  insecureSkipVerify: true\n  username: root@pam\n  password: pw\n",
        )
        .unwrap_or_else(|e| panic!("config: {e}"));
        let subject = Subject::of(&config);
        assert_eq!(subject.identity.userid(), "root@pam");
        assert!(subject.insecure_skip_verify);
    }

    #[test]
    fn privsep_flags_decode_in_every_spelling() {
        for (value, want) in [
            (serde_json::json!(1), Some(true)),
            (serde_json::json!("0"), Some(false)),
            (serde_json::json!(true), Some(true)),
            (serde_json::json!(null), None),
        ] {
            assert_eq!(flag(&value), want, "{value}");
        }
    }

    #[test]
    fn the_step_needs_of_power_and_delete_follow_the_pool() {
        let spec: MachineRequestSpec = serde_json::from_value(serde_json::json!({
            "memory": { "sizeMiB": 512 }, "pool": "k8s", "boot": { "network": {} },
        }))
        .unwrap_or_else(|e| panic!("spec: {e}"));
        let power = Step::Power.needs(&spec, PveRelease::NEWEST_CHECKED);
        assert_eq!(
            (power[0].privilege, power[0].path.as_str()),
            ("VM.PowerMgmt", "/pool/k8s")
        );
        let delete = Step::Delete.needs(&spec, PveRelease::NEWEST_CHECKED);
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

/// The cache against pve-sim (a dependency of the default `demo` feature).
#[cfg(all(test, feature = "demo"))]
mod with_simulator {
    use super::*;
    use pve_sim::faults::{FaultConfig, FaultKind, FaultRule};

    #[tokio::test]
    async fn the_cache_asks_proxmox_once_per_path_within_its_ttl_and_tolerates_no_answer() {
        let sim = pve_sim::SimServer::start(pve_sim::SimOptions::new("pw"))
            .await
            .expect("simulator");
        let config = PveConfig::from_yaml_str(&format!(
            "proxmox:\n  url: \"{}\"\n  fingerprint: \"{}\"\n  username: root@pam\n  password: pw\n",
            sim.url(),
            sim.fingerprint()
        ))
        .expect("config");
        let pve = PveClient::new(&config).expect("client");
        let asked = || -> u64 {
            sim.stats()
                .requests_by_endpoint
                .iter()
                .filter(|(endpoint, _)| endpoint.contains("/access/permissions"))
                .map(|(_, n)| *n)
                .sum()
        };
        let cache = PermissionCache::new(&config, Duration::from_secs(60));
        for _ in 0..3 {
            let held = cache.on_path(&pve, "/vms").await.expect("permissions");
            assert!(held.is_some_and(|h| h.get("VM.Allocate") == Some(&true)));
        }
        assert_eq!(asked(), 1, "three checks, one request");
        cache.on_path(&pve, "/nodes").await.expect("permissions");
        assert_eq!(asked(), 2, "one request per path");
        let expired = PermissionCache::new(&config, Duration::ZERO);
        expired.on_path(&pve, "/vms").await.expect("permissions");
        expired.on_path(&pve, "/vms").await.expect("permissions");
        assert_eq!(asked(), 4, "asked again once the answer expired");

        sim.set_faults(FaultConfig {
            seed: 0,
            rules: vec![FaultRule {
                method: Some("GET".into()),
                path: Some("/access/permissions".into()),
                rate: 1.0,
                max_count: None,
                fault: FaultKind::Error {
                    status: 501,
                    message: "Method 'GET /access/permissions' not implemented".into(),
                },
            }],
        });
        let unreadable = PermissionCache::new(&config, Duration::from_secs(60));
        assert_eq!(
            unreadable
                .on_path(&pve, "/vms")
                .await
                .expect("not an error"),
            None,
            "a Proxmox that cannot tell: unchecked, Proxmox decides"
        );
        sim.shutdown().await;
    }
}
