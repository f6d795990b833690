//! The PVE 8 privileges and built-in roles, as `AccessControl.pm` (`$privgroups`, `create_roles`)
//! of pve-access-control stable-bookworm defines them.

use std::collections::BTreeSet;

/// One privilege group of `$privgroups`: the privileges by the level that gets them.
struct PrivGroup {
    /// The category name (`VM`, `Sys`, ...), used for the `PVE<cat>Admin`/`PVE<cat>User` roles.
    name: &'static str,
    /// Privileges only `Administrator` (and root) get.
    root: &'static [&'static str],
    /// Privileges of the admin roles.
    admin: &'static [&'static str],
    /// Privileges of the user roles.
    user: &'static [&'static str],
    /// Privileges of the auditor role.
    audit: &'static [&'static str],
}

/// `$privgroups` of PVE 8 (pve-access-control 8.1.2+, with `Sys.AccessNetwork`).
const PRIV_GROUPS: &[PrivGroup] = &[
    PrivGroup {
        name: "VM",
        root: &[],
        admin: &[
            "VM.Config.Disk",
            "VM.Config.CPU",
            "VM.Config.Memory",
            "VM.Config.Network",
            "VM.Config.HWType",
            "VM.Config.Options",
            "VM.Allocate",
            "VM.Clone",
            "VM.Migrate",
            "VM.Monitor",
            "VM.Snapshot",
            "VM.Snapshot.Rollback",
        ],
        user: &[
            "VM.Config.CDROM",
            "VM.Config.Cloudinit",
            "VM.Console",
            "VM.Backup",
            "VM.PowerMgmt",
        ],
        audit: &["VM.Audit"],
    },
    PrivGroup {
        name: "Sys",
        root: &[
            "Sys.PowerMgmt",
            "Sys.Modify",
            "Sys.Incoming",
            "Sys.AccessNetwork",
        ],
        admin: &["Sys.Console", "Sys.Syslog"],
        user: &[],
        audit: &["Sys.Audit"],
    },
    PrivGroup {
        name: "Datastore",
        root: &[],
        admin: &["Datastore.Allocate", "Datastore.AllocateTemplate"],
        user: &["Datastore.AllocateSpace"],
        audit: &["Datastore.Audit"],
    },
    PrivGroup {
        name: "SDN",
        root: &[],
        admin: &["SDN.Allocate", "SDN.Audit"],
        user: &["SDN.Use"],
        audit: &["SDN.Audit"],
    },
    PrivGroup {
        name: "User",
        root: &["Realm.Allocate"],
        admin: &["User.Modify", "Group.Allocate", "Realm.AllocateUser"],
        user: &[],
        audit: &[],
    },
    PrivGroup {
        name: "Pool",
        root: &[],
        admin: &["Pool.Allocate"],
        user: &["Pool.Audit"],
        audit: &["Pool.Audit"],
    },
    PrivGroup {
        name: "Mapping",
        root: &[],
        admin: &["Mapping.Modify"],
        user: &["Mapping.Use"],
        audit: &["Mapping.Audit"],
    },
];

/// The privilege that belongs to no group.
const PERMISSIONS_MODIFY: &str = "Permissions.Modify";

/// Every valid PVE 8 privilege (42), sorted.
pub fn all_privileges() -> BTreeSet<&'static str> {
    let mut set: BTreeSet<&'static str> = BTreeSet::new();
    set.insert(PERMISSIONS_MODIFY);
    for g in PRIV_GROUPS {
        for p in g.root.iter().chain(g.admin).chain(g.user).chain(g.audit) {
            set.insert(p);
        }
    }
    set
}

/// Whether `name` is a PVE 8 privilege.
pub fn is_valid_privilege(name: &str) -> bool {
    name == PERMISSIONS_MODIFY
        || PRIV_GROUPS.iter().any(|g| {
            g.root
                .iter()
                .chain(g.admin)
                .chain(g.user)
                .chain(g.audit)
                .any(|p| *p == name)
        })
}

/// The names of the built-in ("special") roles, which cannot be changed or deleted.
pub const BUILTIN_ROLE_NAMES: &[&str] = &[
    "Administrator",
    "NoAccess",
    "PVEAdmin",
    "PVEAuditor",
    "PVEDatastoreAdmin",
    "PVEDatastoreUser",
    "PVEMappingAdmin",
    "PVEMappingUser",
    "PVEPoolAdmin",
    "PVEPoolUser",
    "PVESDNAdmin",
    "PVESDNUser",
    "PVESysAdmin",
    "PVETemplateUser",
    "PVEUserAdmin",
    "PVEVMAdmin",
    "PVEVMUser",
];

/// Whether `name` is a built-in role.
pub fn is_builtin_role(name: &str) -> bool {
    BUILTIN_ROLE_NAMES.contains(&name)
}

/// The privileges of a built-in role, computed as `create_roles` does, or `None` for other names.
pub fn builtin_role_privileges(name: &str) -> Option<BTreeSet<&'static str>> {
    match name {
        "Administrator" => return Some(all_privileges()),
        "NoAccess" => return Some(BTreeSet::new()),
        "PVETemplateUser" => return Some(["VM.Audit", "VM.Clone"].into_iter().collect()),
        _ => {}
    }
    let mut set: BTreeSet<&'static str> = BTreeSet::new();
    let mut known = false;
    for g in PRIV_GROUPS {
        let admin_role = format!("PVE{}Admin", g.name);
        let user_role = format!("PVE{}User", g.name);
        if name == "PVEAdmin" || name == admin_role {
            known = true;
            set.extend(g.admin.iter().chain(g.user).chain(g.audit).copied());
        }
        if name == user_role && !g.user.is_empty() {
            known = true;
            set.extend(g.user.iter().chain(g.audit).copied());
        }
        if name == "PVEAuditor" {
            known = true;
            set.extend(g.audit.iter().copied());
        }
    }
    if name == "PVEAdmin" {
        // Only Administrator, root@pam and PVEMappingAdmin may use Mapping.Modify (create_roles).
        set.remove("Mapping.Modify");
    }
    known.then_some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pve8_has_42_privileges() {
        assert_eq!(all_privileges().len(), 42);
        assert!(is_valid_privilege("Sys.AccessNetwork"));
        assert!(!is_valid_privilege("VM.GuestAgent.Audit"));
    }

    #[test]
    fn every_builtin_role_name_has_a_privilege_set() {
        for name in BUILTIN_ROLE_NAMES {
            assert!(builtin_role_privileges(name).is_some(), "{name}");
        }
        assert!(builtin_role_privileges("PVESysUser").is_none());
        assert!(builtin_role_privileges("PVEUserUser").is_none());
    }

    #[test]
    fn builtin_role_sizes_match_pve8() {
        let size = |n: &str| builtin_role_privileges(n).map(|s| s.len());
        assert_eq!(size("PVEAdmin"), Some(35));
        assert_eq!(size("PVEVMAdmin"), Some(18));
        assert_eq!(size("PVEVMUser"), Some(6));
        assert_eq!(size("PVEDatastoreAdmin"), Some(4));
        assert_eq!(size("NoAccess"), Some(0));
        let auditor: Vec<_> = builtin_role_privileges("PVEAuditor")
            .unwrap_or_default()
            .into_iter()
            .collect();
        assert_eq!(
            auditor,
            [
                "Datastore.Audit",
                "Mapping.Audit",
                "Pool.Audit",
                "SDN.Audit",
                "Sys.Audit",
                "VM.Audit"
            ]
        );
        let sysadmin: Vec<_> = builtin_role_privileges("PVESysAdmin")
            .unwrap_or_default()
            .into_iter()
            .collect();
        assert_eq!(sysadmin, ["Sys.Audit", "Sys.Console", "Sys.Syslog"]);
        let pveadmin = builtin_role_privileges("PVEAdmin").unwrap_or_default();
        assert!(!pveadmin.contains("Mapping.Modify"));
        assert!(!pveadmin.contains("Sys.Modify"));
        assert!(!pveadmin.contains("Permissions.Modify"));
        assert!(!pveadmin.contains("Realm.Allocate"));
    }
}
