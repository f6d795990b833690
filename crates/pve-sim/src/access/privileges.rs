//! The privileges and built-in roles per Proxmox VE version, as `AccessControl.pm` (`$privgroups`,
//! `create_roles`) of pve-access-control defines them: stable-bookworm (8.2.x, PVE 8.4: 42
//! privileges) and master 9.1.1 (PVE 9.x: 47, `VM.GuestAgent.*` and `VM.Replicate` instead of
//! `VM.Monitor`).

use std::collections::BTreeSet;

use crate::version::PveVersion;

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

/// The `VM` group of PVE 8 (with `VM.Monitor`).
const VM_PVE8: PrivGroup = PrivGroup {
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
};

/// The `VM` group of PVE 9 (access-control 9.0.2/9.0.3: `VM.GuestAgent.*` split out of the dropped
/// `VM.Monitor`, and `VM.Replicate`).
const VM_PVE9: PrivGroup = PrivGroup {
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
        "VM.GuestAgent.Unrestricted",
        "VM.Migrate",
        "VM.Replicate",
        "VM.Snapshot",
        "VM.Snapshot.Rollback",
    ],
    user: &[
        "VM.Config.CDROM",
        "VM.Config.Cloudinit",
        "VM.Console",
        "VM.Backup",
        "VM.GuestAgent.FileRead",
        "VM.GuestAgent.FileSystemMgmt",
        "VM.GuestAgent.FileWrite",
        "VM.PowerMgmt",
    ],
    audit: &["VM.Audit", "VM.GuestAgent.Audit"],
};

/// The other groups of `$privgroups`, the same in PVE 8 (8.1.2+, with `Sys.AccessNetwork`) and 9.
const OTHER_GROUPS: &[PrivGroup] = &[
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

/// The privilege groups of `version`.
fn groups(version: PveVersion) -> impl Iterator<Item = &'static PrivGroup> {
    let vm = match version {
        PveVersion::Pve8_4 => &VM_PVE8,
        PveVersion::Pve9_1 => &VM_PVE9,
    };
    std::iter::once(vm).chain(OTHER_GROUPS)
}

/// Every privilege of one group, any level.
fn group_privileges(g: &'static PrivGroup) -> impl Iterator<Item = &'static str> {
    g.root
        .iter()
        .chain(g.admin)
        .chain(g.user)
        .chain(g.audit)
        .copied()
}

/// The privilege that belongs to no group.
const PERMISSIONS_MODIFY: &str = "Permissions.Modify";

/// Every valid privilege of `version` (8.4: 42, 9.1: 47), sorted.
pub fn all_privileges(version: PveVersion) -> BTreeSet<&'static str> {
    let mut set: BTreeSet<&'static str> = BTreeSet::new();
    set.insert(PERMISSIONS_MODIFY);
    set.extend(groups(version).flat_map(group_privileges));
    set
}

/// Whether `name` is a privilege of `version` (`verify_privname`).
pub fn is_valid_privilege(version: PveVersion, name: &str) -> bool {
    name == PERMISSIONS_MODIFY
        || groups(version)
            .flat_map(group_privileges)
            .any(|p| p == name)
}

/// The names of the built-in ("special") roles, which cannot be changed or deleted. The same
/// names in PVE 8 and 9; their privileges differ ([`builtin_role_privileges`]).
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

/// The privileges of a built-in role of `version`, computed as `create_roles` does, or `None`
/// for other names.
pub fn builtin_role_privileges(version: PveVersion, name: &str) -> Option<BTreeSet<&'static str>> {
    match name {
        "Administrator" => return Some(all_privileges(version)),
        "NoAccess" => return Some(BTreeSet::new()),
        "PVETemplateUser" => return Some(["VM.Audit", "VM.Clone"].into_iter().collect()),
        _ => {}
    }
    let mut set: BTreeSet<&'static str> = BTreeSet::new();
    let mut known = false;
    for g in groups(version) {
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
    use std::collections::BTreeMap;

    use super::*;

    const PVE8: PveVersion = PveVersion::Pve8_4;
    const PVE9: PveVersion = PveVersion::Pve9_1;

    #[test]
    fn pve8_has_42_privileges_with_vm_monitor() {
        assert_eq!(all_privileges(PVE8).len(), 42);
        assert!(is_valid_privilege(PVE8, "Sys.AccessNetwork"));
        assert!(is_valid_privilege(PVE8, "VM.Monitor"));
        assert!(!is_valid_privilege(PVE8, "VM.GuestAgent.Audit"));
        assert!(!is_valid_privilege(PVE8, "VM.Replicate"));
    }

    #[test]
    fn pve9_has_47_privileges_with_guest_agent_and_replicate_but_no_vm_monitor() {
        let all = all_privileges(PVE9);
        assert_eq!(all.len(), 47);
        for p in [
            "VM.GuestAgent.Audit",
            "VM.GuestAgent.FileRead",
            "VM.GuestAgent.FileWrite",
            "VM.GuestAgent.FileSystemMgmt",
            "VM.GuestAgent.Unrestricted",
            "VM.Replicate",
        ] {
            assert!(all.contains(p) && is_valid_privilege(PVE9, p), "{p}");
        }
        assert!(!is_valid_privilege(PVE9, "VM.Monitor"));
        let added: Vec<&str> = all.difference(&all_privileges(PVE8)).copied().collect();
        assert_eq!(added.len(), 6, "{added:?}");
    }

    #[test]
    fn every_builtin_role_name_has_a_privilege_set_in_both_versions() {
        for version in PveVersion::ALL {
            for name in BUILTIN_ROLE_NAMES {
                assert!(
                    builtin_role_privileges(version, name).is_some(),
                    "{version} {name}"
                );
            }
            assert!(builtin_role_privileges(version, "PVESysUser").is_none());
            assert!(builtin_role_privileges(version, "PVEUserUser").is_none());
        }
    }

    #[test]
    fn builtin_role_sizes_match_pve8_and_pve9() {
        let size = |v, n: &str| builtin_role_privileges(v, n).map(|s| s.len());
        for (role, pve8, pve9) in [
            ("Administrator", 42, 47),
            ("PVEAdmin", 35, 40),
            ("PVEVMAdmin", 18, 23),
            ("PVEVMUser", 6, 10),
            ("PVEAuditor", 6, 7),
            ("PVEDatastoreAdmin", 4, 4),
            ("NoAccess", 0, 0),
        ] {
            assert_eq!(size(PVE8, role), Some(pve8), "8.4 {role}");
            assert_eq!(size(PVE9, role), Some(pve9), "9.1 {role}");
        }
        let sysadmin: Vec<_> = builtin_role_privileges(PVE9, "PVESysAdmin")
            .unwrap_or_default()
            .into_iter()
            .collect();
        assert_eq!(sysadmin, ["Sys.Audit", "Sys.Console", "Sys.Syslog"]);
        for version in PveVersion::ALL {
            let pveadmin = builtin_role_privileges(version, "PVEAdmin").unwrap_or_default();
            for p in [
                "Mapping.Modify",
                "Sys.Modify",
                "Permissions.Modify",
                "Realm.Allocate",
            ] {
                assert!(!pveadmin.contains(p), "{version} PVEAdmin has {p}");
            }
        }
    }

    /// `builtin-roles.json` of the reference material: privileges and roles per version.
    #[derive(serde::Deserialize)]
    struct BuiltinRoles {
        privileges: BTreeMap<String, Vec<String>>,
        roles: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    }

    #[test]
    fn privileges_and_every_builtin_role_match_builtin_roles_json_in_both_versions() {
        let path = super::super::vectors_test::reference_dir().join("builtin-roles.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "builtin roles missing: expected {} (shared/pve-reference beside the checkout): {e}",
                path.display()
            )
        });
        let reference: BuiltinRoles = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid: {e}", path.display()));
        let mut compared = 0;
        for (key, version) in [("pve8.4", PVE8), ("pve9", PVE9)] {
            let want: BTreeSet<&str> = reference.privileges[key]
                .iter()
                .map(String::as_str)
                .collect();
            assert_eq!(all_privileges(version), want, "{key} privileges");
            let roles = &reference.roles[key];
            let names: BTreeSet<&str> = roles.keys().map(String::as_str).collect();
            let ours: BTreeSet<&str> = BUILTIN_ROLE_NAMES.iter().copied().collect();
            assert_eq!(ours, names, "{key} built-in role names");
            for (role, privs) in roles {
                let want: BTreeSet<&str> = privs.iter().map(String::as_str).collect();
                assert_eq!(
                    builtin_role_privileges(version, role),
                    Some(want),
                    "{key} {role}"
                );
                compared += 1;
            }
        }
        assert_eq!(compared, 34, "17 roles in each version");
    }
}
