//! `pveum` commands that set up exactly the privileges of a list of needs: small roles, a user, a
//! privilege-separated token, and ACLs for both on each path.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Need;

/// The roles and ACLs that grant a set of needs and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveumPlan {
    /// Role name -> privileges.
    pub roles: BTreeMap<String, Vec<&'static str>>,
    /// (path, role) pairs, in path order.
    pub acls: Vec<(String, String)>,
    /// The user, e.g. `pve-operator@pve`.
    pub user: String,
    /// The token id, e.g. `controller`.
    pub token: String,
}

/// Groups `needs` by ACL path and gives each distinct privilege set one role, named after the
/// kind of path it is granted on.
pub fn pveum_plan(needs: &[Need], user: &str, token: &str) -> PveumPlan {
    let mut by_path: BTreeMap<&str, Vec<&'static str>> = BTreeMap::new();
    for need in needs {
        let privileges = by_path.entry(need.path.as_str()).or_default();
        if !privileges.contains(&need.privilege) {
            privileges.push(need.privilege);
        }
    }
    let mut roles: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let mut acls = Vec::new();
    for (path, mut privileges) in by_path {
        privileges.sort_unstable();
        let existing = roles
            .iter()
            .find(|(_, privs)| **privs == privileges)
            .map(|(name, _)| name.clone());
        let role = existing.unwrap_or_else(|| {
            let base = role_base_name(path, &privileges);
            let mut name = base.clone();
            let mut n = 2;
            while roles.contains_key(&name) {
                name = format!("{base}{n}");
                n += 1;
            }
            roles.insert(name.clone(), privileges);
            name
        });
        acls.push((path.to_string(), role));
    }
    PveumPlan {
        roles,
        acls,
        user: user.to_string(),
        token: token.to_string(),
    }
}

/// The prefix of the generated roles' names.
const ROLE_PREFIX: &str = "Operator";

fn role_base_name(path: &str, privileges: &[&str]) -> String {
    let kind = if path == "/vms" || path.starts_with("/pool/") {
        "VMs"
    } else if path.starts_with("/vms/") {
        "Template"
    } else if path.starts_with("/storage") && privileges == ["Datastore.Audit"] {
        "StorageRead"
    } else if path.starts_with("/storage") {
        "Storage"
    } else if path.starts_with("/sdn") {
        "Network"
    } else if path.starts_with("/nodes") {
        "Nodes"
    } else if path.starts_with("/mapping") {
        "Mappings"
    } else {
        "Other"
    };
    // Proxmox reserves role ids starting with "PVE" (case-insensitive) for its built-in roles.
    format!("{ROLE_PREFIX}{kind}")
}

impl PveumPlan {
    /// The commands, one per line, runnable in a shell on a Proxmox node (or through
    /// `pve-sim pveum`). Paths with a `<placeholder>` are printed commented out with a hint.
    pub fn commands(&self) -> String {
        let mut out = String::new();
        let full_token = format!("{}!{}", self.user, self.token);
        let _ = writeln!(
            out,
            "# Roles with exactly the privileges pve-operator needs"
        );
        for (role, privileges) in &self.roles {
            let _ = writeln!(
                out,
                "pveum role add {role} -privs \"{}\"",
                privileges.join(",")
            );
        }
        let _ = writeln!(
            out,
            "# A user, and a privilege-separated API token for the controller"
        );
        let _ = writeln!(out, "pveum user add {}", self.user);
        let _ = writeln!(
            out,
            "pveum user token add {} {} --privsep 1",
            self.user, self.token
        );
        let _ = writeln!(
            out,
            "# ACLs for the user and the token: a privilege-separated token has only what both have"
        );
        for (path, role) in &self.acls {
            let prefix = if path.contains('<') {
                "# replace the <placeholder>: "
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "{prefix}pveum aclmod {path} -user {} -role {role}",
                self.user
            );
            let _ = writeln!(
                out,
                "{prefix}pveum aclmod {path} -token '{full_token}' -role {role}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(privilege: &'static str, path: &str) -> Need {
        Need {
            privilege,
            path: path.into(),
            needed_for: "test".into(),
        }
    }

    #[test]
    fn paths_with_the_same_privileges_share_one_role() {
        let needs = [
            need("Datastore.AllocateSpace", "/storage/a"),
            need("Datastore.AllocateSpace", "/storage/b"),
            need("VM.Allocate", "/vms"),
            need("VM.Audit", "/vms"),
        ];
        let plan = pveum_plan(&needs, "op@pve", "ctl");
        assert_eq!(plan.roles.len(), 2);
        assert_eq!(plan.roles["OperatorVMs"], ["VM.Allocate", "VM.Audit"]);
        assert_eq!(plan.acls.len(), 3);
        let commands = plan.commands();
        assert!(commands.contains("pveum role add OperatorVMs -privs \"VM.Allocate,VM.Audit\""));
        assert!(commands.contains("pveum user token add op@pve ctl --privsep 1"));
        assert!(
            commands.contains("pveum aclmod /storage/b -token 'op@pve!ctl' -role OperatorStorage")
        );
    }

    #[test]
    fn different_privilege_sets_on_one_kind_of_path_get_distinct_roles() {
        let needs = [
            need("Datastore.AllocateSpace", "/storage/a"),
            need("Datastore.AllocateSpace", "/storage/b"),
            need("Datastore.Audit", "/storage/b"),
            need("Datastore.Audit", "/storage/iso"),
        ];
        let plan = pveum_plan(&needs, "op@pve", "ctl");
        assert_eq!(plan.roles.len(), 3, "{:?}", plan.roles);
        assert!(plan.roles.contains_key("OperatorStorage2"));
        assert_eq!(plan.roles["OperatorStorageRead"], ["Datastore.Audit"]);
    }

    #[test]
    fn no_role_name_is_in_the_namespace_proxmox_reserves() {
        let needs = crate::privileges::needs_for_specs(&[], pve_client::PveRelease::NEWEST_CHECKED);
        let plan = pveum_plan(&needs, "op@pve", "ctl");
        for role in plan.roles.keys() {
            assert!(
                !role.to_ascii_lowercase().starts_with("pve"),
                "Proxmox refuses role ids starting with PVE: {role}"
            );
        }
    }

    #[test]
    fn placeholder_paths_are_commented_out() {
        let plan = pveum_plan(
            &[need("SDN.Use", "/sdn/zones/localnetwork/<bridge>")],
            "op@pve",
            "ctl",
        );
        assert!(plan.commands().contains(
            "# replace the <placeholder>: pveum aclmod /sdn/zones/localnetwork/<bridge>"
        ));
    }
}
