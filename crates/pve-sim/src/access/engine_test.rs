//! Behaviour tests of the engine beyond the vectors: tokens, passwords, mutations, the
//! `/access/permissions` tree, persistence and secret redaction.

use super::{AccessControl, AccessError, AclChange, AclSubject, UserOptions};
use crate::version::PveVersion;

/// The version most engine tests run in (evaluation does not depend on it).
const PVE8: PveVersion = PveVersion::Pve8_4;
/// PVE 9.1, for the tests of what differs.
const PVE9: PveVersion = PveVersion::Pve9_1;

/// A configuration with a VM operator, a token of each privsep kind and a pool.
fn sample() -> AccessControl {
    let text = "user:root@pam:1:0:::root@example.com:::\n\
                user:ops@pve:1:0:Olga:Ops:ops@example.com:night shift::\n\
                token:ops@pve!full:0:0::\n\
                token:ops@pve!sep:0:1::\n\
                user:off@pve:0:0::::::\n\
                group:admins:ops@pve::\n\
                pool:team:Team pool:150:local-lvm:\n\
                role:Operator:VM.Audit,VM.PowerMgmt:\n\
                acl:1:/vms:@admins:Operator:\n\
                acl:1:/vms/100:ops@pve!sep:PVEVMAdmin:\n\
                acl:1:/pool/team:ops@pve:PVEVMUser:\n";
    AccessControl::from_user_cfg(text, PVE8).unwrap_or_default()
}

/// Shorthand for a sorted privilege list.
fn privs(cfg: &AccessControl, who: &str, path: &str) -> Vec<String> {
    cfg.permissions(who, path).into_iter().collect()
}

#[test]
fn root_has_every_privilege_everywhere() {
    let cfg = AccessControl::new_default("pw", PVE8);
    assert_eq!(cfg.permissions("root@pam", "/vms/123").len(), 42);
    assert!(cfg.check(
        "root@pam",
        "/",
        &["Sys.Modify", "Permissions.Modify"],
        false
    ));
    assert!(cfg.verify_password("root@pam", "pw"));
    assert!(!cfg.verify_password("root@pam", "PW"));
}

#[test]
fn privsep_token_gets_the_intersection_and_plain_token_the_users_rights() {
    let cfg = sample();
    assert_eq!(
        privs(&cfg, "ops@pve", "/vms/100"),
        ["VM.Audit", "VM.PowerMgmt"]
    );
    assert_eq!(
        privs(&cfg, "ops@pve!full", "/vms/100"),
        ["VM.Audit", "VM.PowerMgmt"]
    );
    // PVEVMAdmin on the token, Operator on the user: only the common privileges remain.
    assert_eq!(
        privs(&cfg, "ops@pve!sep", "/vms/100"),
        ["VM.Audit", "VM.PowerMgmt"]
    );
    assert!(privs(&cfg, "ops@pve!sep", "/vms/101").is_empty());
    assert!(privs(&cfg, "ops@pve!nope", "/vms/100").is_empty());
}

#[test]
fn pool_roles_reach_member_vms_and_storages() {
    let cfg = sample();
    let vm = cfg.permissions("ops@pve", "/vms/150");
    assert!(vm.contains("VM.Console"), "PVEVMUser from the pool: {vm:?}");
    assert!(vm.contains("VM.Audit"));
    assert!(
        cfg.permissions("ops@pve", "/storage/local-lvm")
            .contains("VM.Backup")
    );
    assert!(
        !cfg.permissions("ops@pve", "/vms/151")
            .contains("VM.Console")
    );
}

#[test]
fn check_distinguishes_all_from_any_and_reports_pve_texts() {
    let cfg = sample();
    assert!(cfg.check("ops@pve", "/vms/7", &["VM.Audit", "VM.PowerMgmt"], false));
    assert!(!cfg.check("ops@pve", "/vms/7", &["VM.Audit", "VM.Allocate"], false));
    assert!(cfg.check("ops@pve", "/vms/7", &["VM.Audit", "VM.Allocate"], true));
    assert_eq!(
        cfg.permission_error("ops@pve", "/vms/7", &["VM.Audit", "VM.Allocate"], false),
        Some("Permission check failed (/vms/7, VM.Allocate)".to_string())
    );
    assert_eq!(
        cfg.permission_error("ops@pve", "/", &["Sys.Audit", "Sys.Modify"], true),
        Some("Permission check failed (/, Sys.Audit|Sys.Modify)".to_string())
    );
}

#[test]
fn tokens_authenticate_with_their_secret_until_removed() {
    let mut cfg = AccessControl::new_default("pw", PVE8);
    cfg.user_add("ci@pve", Some("password1"), UserOptions::default())
        .unwrap_or_default();
    let secret = cfg.token_add("ci@pve", "deploy", None, None, Some("CI"));
    let Ok(secret) = secret else {
        panic!("token_add failed: {secret:?}");
    };
    assert_eq!(secret.len(), 36);
    assert!(cfg.verify_token("ci@pve!deploy", &secret));
    assert!(!cfg.verify_token("ci@pve!deploy", "00000000-0000-4000-8000-000000000000"));
    assert!(
        cfg.token("ci@pve", "deploy").is_some_and(|t| t.privsep),
        "privsep defaults to 1"
    );
    assert_eq!(
        cfg.token_add("ci@pve", "deploy", None, None, None),
        Err(AccessError::TokenExists)
    );
    assert_eq!(cfg.token_remove("ci@pve", "deploy"), Ok(()));
    assert!(!cfg.verify_token("ci@pve!deploy", &secret));
}

#[test]
fn disabled_or_expired_users_and_expired_tokens_cannot_authenticate() {
    let mut cfg = AccessControl::new_default("pw", PVE8);
    let opts = UserOptions {
        enable: Some(false),
        ..UserOptions::default()
    };
    assert_eq!(cfg.user_add("off@pve", Some("password1"), opts), Ok(()));
    assert!(!cfg.user_enabled("off@pve"));
    assert_eq!(
        cfg.authenticate_password("off@pve", "password1"),
        Err(AccessError::UserDisabled("off@pve".into()))
    );
    let expired = UserOptions {
        expire: Some(1),
        ..UserOptions::default()
    };
    assert_eq!(cfg.user_add("old@pve", Some("password1"), expired), Ok(()));
    assert_eq!(
        cfg.authenticate_password("old@pve", "password1"),
        Err(AccessError::UserExpired("old@pve".into()))
    );
    assert_eq!(
        cfg.user_add("tok@pve", None, UserOptions::default()),
        Ok(())
    );
    let secret = cfg
        .token_add("tok@pve", "t1", Some(false), Some(1), None)
        .unwrap_or_default();
    assert_eq!(
        cfg.authenticate_token("tok@pve!t1", &secret),
        Err(AccessError::TokenExpired("t1".into()))
    );
    // A disabled owner disables its tokens too.
    let secret = cfg
        .token_add("tok@pve", "t2", None, None, None)
        .unwrap_or_default();
    assert!(cfg.verify_token("tok@pve!t2", &secret));
    let disable = UserOptions {
        enable: Some(false),
        ..UserOptions::default()
    };
    assert_eq!(cfg.user_modify("tok@pve", disable, false), Ok(()));
    assert!(!cfg.verify_token("tok@pve!t2", &secret));
}

/// An ACL change giving `user` the role `role` on `path`.
fn user_acl(path: &str, role: &str, user: &str, propagate: bool) -> AclChange {
    AclChange {
        path: path.into(),
        roles: vec![role.into()],
        users: vec![user.into()],
        propagate,
        ..AclChange::default()
    }
}

#[test]
fn acl_changes_grant_revoke_and_validate() {
    let mut cfg = sample();
    let grant = user_acl("/storage/local-lvm/", "PVEDatastoreUser", "ops@pve", true);
    let may_allocate = |cfg: &AccessControl| {
        cfg.check(
            "ops@pve",
            "/storage/local-lvm",
            &["Datastore.AllocateSpace"],
            false,
        )
    };
    assert_eq!(cfg.acl_update(&grant, None), Ok(()));
    assert!(may_allocate(&cfg));
    assert!(
        cfg.to_user_cfg()
            .contains("acl:1:/storage/local-lvm:ops@pve:PVEDatastoreUser:")
    );
    let revoke = AclChange {
        delete: true,
        ..grant.clone()
    };
    assert_eq!(cfg.acl_update(&revoke, None), Ok(()));
    assert!(!may_allocate(&cfg));

    let bad_path = AclChange {
        path: "/users".into(),
        ..grant.clone()
    };
    assert_eq!(
        cfg.acl_update(&bad_path, None),
        Err(AccessError::InvalidAclPath("/users".into()))
    );
    let bad_role = AclChange {
        roles: vec!["Nope".into()],
        ..grant.clone()
    };
    assert_eq!(
        cfg.acl_update(&bad_role, None),
        Err(AccessError::NoSuchRole("Nope".into()))
    );
    let nobody = AclChange {
        users: vec![],
        ..grant
    };
    assert_eq!(
        cfg.acl_update(&nobody, None),
        Err(AccessError::NoAclMembers)
    );
}

#[test]
fn callers_without_permissions_modify_cannot_hand_out_more_than_they_have() {
    let mut cfg = sample();
    // ops has Operator (VM.Audit, VM.PowerMgmt) on /vms via its group, and no Permissions.Modify.
    let escalate = user_acl("/vms/100", "PVEVMAdmin", "off@pve", false);
    assert!(matches!(
        cfg.acl_update(&escalate, Some("ops@pve")),
        Err(AccessError::AclRoleDenied(_))
    ));
    let subset = AclChange {
        roles: vec!["Operator".into()],
        ..escalate
    };
    assert_eq!(cfg.acl_update(&subset, Some("ops@pve")), Ok(()));
}

#[test]
fn roles_are_validated_and_builtins_are_immutable() {
    let mut cfg = AccessControl::new_default("pw", PVE8);
    assert_eq!(
        cfg.role_add("Deployer", &["VM.Allocate", "VM.Audit"]),
        Ok(())
    );
    assert_eq!(
        cfg.role_add("Bad", &["VM.GuestAgent.Audit"]),
        Err(AccessError::InvalidPrivilege("VM.GuestAgent.Audit".into()))
    );
    assert_eq!(
        cfg.role_add("Administrator", &[]),
        Err(AccessError::RoleExists("Administrator".into()))
    );
    assert_eq!(
        cfg.role_add("PVEVMAdmin", &[]),
        Err(AccessError::ReservedRolePrefix)
    );
    assert_eq!(
        cfg.role_add("PVEMine", &[]),
        Err(AccessError::ReservedRolePrefix)
    );
    assert_eq!(
        cfg.role_modify("PVEVMUser", &["VM.Allocate"], true),
        Err(AccessError::BuiltinRoleModify("PVEVMUser".into()))
    );
    assert_eq!(cfg.role_modify("Deployer", &["Sys.Audit"], true), Ok(()));
    assert_eq!(cfg.role("Deployer").map(|s| s.len()), Some(3));
    assert_eq!(cfg.role_modify("Deployer", &["Sys.Audit"], false), Ok(()));
    assert_eq!(cfg.role("Deployer").map(|s| s.len()), Some(1));
    assert_eq!(
        cfg.role_delete("Administrator"),
        Err(AccessError::BuiltinRoleDelete("Administrator".into()))
    );
    assert_eq!(cfg.all_roles().len(), 18);
}

#[test]
fn deleting_a_user_removes_its_groups_acls_and_tokens() {
    let mut cfg = sample();
    assert_eq!(cfg.user_delete("ops@pve"), Ok(()));
    assert!(cfg.user("ops@pve").is_none());
    assert!(cfg.group("admins").is_some_and(|g| g.users.is_empty()));
    let text = cfg.to_user_cfg();
    assert!(!text.contains("ops@pve"), "{text}");
    assert_eq!(
        cfg.user_delete("ops@pve"),
        Err(AccessError::NoSuchUser("ops@pve".into()))
    );
}

#[test]
fn permissions_tree_lists_paths_with_privileges_and_propagation() {
    let cfg = sample();
    let tree = cfg.permissions_tree("ops@pve", None);
    assert_eq!(tree.get("/vms").and_then(|m| m.get("VM.Audit")), Some(&1));
    // Pool-derived privileges never propagate.
    assert_eq!(
        tree.get("/vms/150").and_then(|m| m.get("VM.Console")),
        Some(&0)
    );
    assert!(
        !tree.contains_key("/"),
        "paths without privileges are omitted"
    );
    let one = cfg.permissions_tree("ops@pve", Some("/nodes"));
    assert_eq!(one.len(), 1);
    assert!(one.get("/nodes").is_some_and(|m| m.is_empty()));
    let root = cfg.permissions_tree("root@pam", Some("/"));
    assert!(
        root.get("/")
            .is_some_and(|m| m.len() == 42 && m.values().all(|v| *v == 1))
    );
}

#[test]
fn user_cfg_round_trips_text_fields_and_tokens() {
    let cfg = sample();
    let text = cfg.to_user_cfg();
    assert!(
        text.contains("user:ops@pve:1:0:Olga:Ops:ops@example.com:night shift::\n"),
        "{text}"
    );
    assert!(text.contains("token:ops@pve!sep:0:1::\n"));
    assert!(text.contains("pool:team:Team pool:150:local-lvm:\n"));
    assert!(text.contains("role:Operator:VM.Audit,VM.PowerMgmt:\n"));
    assert!(!text.contains("role:PVE"), "built-in roles are not written");
    assert_eq!(AccessControl::from_user_cfg(&text, PVE8), Ok(cfg));
}

#[test]
fn persisted_state_keeps_logins_but_no_plain_secrets() {
    let mut cfg = AccessControl::new_default("rootpw-123", PVE8);
    let secret = cfg
        .token_add("root@pam", "ci", None, None, None)
        .unwrap_or_default();
    let json = serde_json::to_string(&cfg).unwrap_or_default();
    assert!(!json.contains("rootpw-123"));
    assert!(!json.contains(&secret));
    let back: AccessControl = serde_json::from_str(&json).unwrap_or_default();
    assert!(back.verify_password("root@pam", "rootpw-123"));
    assert!(back.verify_token("root@pam!ci", &secret));
    let debug = format!("{back:?}");
    assert!(!debug.contains("sha256"), "{debug}");
    assert!(debug.contains("***"));
}

#[test]
fn pools_hold_each_vm_once_and_forget_destroyed_vms() {
    let mut cfg = sample();
    assert_eq!(cfg.pool_add("other", None), Ok(()));
    assert_eq!(cfg.pool_add_vm("team", 200), Ok(()));
    assert_eq!(
        cfg.pool_add_vm("other", 200),
        Err(AccessError::VmInPool(200))
    );
    assert_eq!(
        cfg.pool_add_vm("ghost", 201),
        Err(AccessError::NoSuchPool("ghost".into()))
    );
    assert_eq!(cfg.vm_pool(200), Some("team"));
    assert!(
        cfg.permissions("ops@pve", "/vms/200")
            .contains("VM.Console")
    );
    cfg.remove_vm(200);
    assert_eq!(cfg.vm_pool(200), None);
    assert!(
        !cfg.permissions("ops@pve", "/vms/200")
            .contains("VM.Console")
    );
}

#[test]
fn expiry_is_judged_at_the_given_clock() {
    let mut cfg = AccessControl::new_default("pw", PVE8);
    let opts = UserOptions {
        expire: Some(2_000),
        ..UserOptions::default()
    };
    assert_eq!(cfg.user_add("temp@pve", None, opts), Ok(()));
    let secret = cfg
        .token_add("temp@pve", "ci", None, Some(1_500), None)
        .unwrap_or_default();
    assert_eq!(cfg.check_user_enabled_at("temp@pve", 1_999), Ok(()));
    assert_eq!(
        cfg.authenticate_token_at("temp@pve!ci", &secret, 1_400),
        Ok(())
    );
    assert_eq!(
        cfg.authenticate_token_at("temp@pve!ci", &secret, 1_600),
        Err(AccessError::TokenExpired("ci".into()))
    );
    assert_eq!(
        cfg.check_user_enabled_at("temp@pve", 2_001),
        Err(AccessError::UserExpired("temp@pve".into()))
    );
}

#[test]
fn single_acl_grants_propagate_only_when_asked() {
    let mut cfg = sample();
    let ops = || AclSubject::User("ops@pve".into());
    assert_eq!(cfg.acl_modify("/nodes", ops(), "PVEAuditor", false), Ok(()));
    assert!(cfg.check("ops@pve", "/nodes", &["Sys.Audit"], false));
    assert!(!cfg.check("ops@pve", "/nodes/pve", &["Sys.Audit"], false));
    assert_eq!(cfg.acl_modify("/nodes", ops(), "PVEAuditor", true), Ok(()));
    assert!(cfg.check("ops@pve", "/nodes/pve", &["Sys.Audit"], false));
    assert_eq!(cfg.acl_delete("/nodes", ops(), "PVEAuditor"), Ok(()));
    assert!(!cfg.check("ops@pve", "/nodes", &["Sys.Audit"], false));
    let token = AclSubject::Token("ops@pve!missing".into());
    assert_eq!(
        cfg.acl_modify("/", token, "PVEAuditor", true),
        Err(AccessError::NoSuchToken {
            user: "ops@pve".into(),
            token: "missing".into()
        })
    );
}

/// Collects what `f` logs (text format, no colours).
fn logs_of(f: impl FnOnce()) -> String {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// A log sink shared with the test.
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink(Arc::new(Mutex::new(Vec::new())));
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = sink.0.lock().map(|b| b.clone()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).to_string()
}

/// A `user.cfg` with a custom role that uses privileges of both versions.
const MIXED_ROLE_CFG: &str = "user:mon@pve:1:0:::::\n\
                              role:Watcher:VM.Audit,VM.Monitor,VM.GuestAgent.Audit:\n\
                              acl:1:/vms:mon@pve:Watcher:\n";

#[test]
fn a_9_1_user_cfg_keeps_a_role_but_drops_vm_monitor_with_pves_warning() {
    let mut cfg = None;
    let logs = logs_of(|| cfg = AccessControl::from_user_cfg(MIXED_ROLE_CFG, PVE9).ok());
    let cfg = cfg.unwrap_or_default();
    let watcher: Vec<String> = cfg
        .role("Watcher")
        .unwrap_or_default()
        .into_iter()
        .collect();
    assert_eq!(watcher, ["VM.Audit", "VM.GuestAgent.Audit"]);
    assert_eq!(
        privs(&cfg, "mon@pve", "/vms/100"),
        ["VM.Audit", "VM.GuestAgent.Audit"]
    );
    assert!(
        logs.contains("user config - ignore invalid privilege 'VM.Monitor'"),
        "{logs}"
    );
    assert!(!logs.contains("'VM.GuestAgent.Audit'"), "{logs}");

    // 8.4 reads the same file the other way round.
    let mut cfg = None;
    let logs = logs_of(|| cfg = AccessControl::from_user_cfg(MIXED_ROLE_CFG, PVE8).ok());
    let watcher: Vec<String> = cfg
        .and_then(|c| c.role("Watcher"))
        .unwrap_or_default()
        .into_iter()
        .collect();
    assert_eq!(watcher, ["VM.Audit", "VM.Monitor"]);
    assert!(
        logs.contains("user config - ignore invalid privilege 'VM.GuestAgent.Audit'"),
        "{logs}"
    );
}

#[test]
fn switching_a_loaded_configuration_to_9_1_drops_what_9_1_lacks_with_the_warning() {
    let mut cfg = AccessControl::from_user_cfg(MIXED_ROLE_CFG, PVE8).unwrap_or_default();
    assert_eq!(cfg.version(), PVE8);
    let logs = logs_of(|| cfg.set_version(PVE9));
    assert_eq!(cfg.version(), PVE9);
    let watcher: Vec<String> = cfg
        .role("Watcher")
        .unwrap_or_default()
        .into_iter()
        .collect();
    assert_eq!(watcher, ["VM.Audit"]);
    assert!(
        logs.contains("user config - ignore invalid privilege 'VM.Monitor'"),
        "{logs}"
    );
}

#[test]
fn roles_take_only_privileges_of_their_version_and_root_has_all_of_them() {
    let mut pve9 = AccessControl::new_default("pw", PVE9);
    assert_eq!(
        pve9.role_add("Mon", &["VM.Audit", "VM.Monitor"]),
        Err(AccessError::InvalidPrivilege("VM.Monitor".to_string()))
    );
    assert!(pve9.role("Mon").is_none(), "a refused role is not created");
    assert_eq!(pve9.role_add("Ga", &["VM.GuestAgent.Audit"]), Ok(()));
    assert_eq!(
        pve9.role_modify("Ga", &["VM.Monitor"], true),
        Err(AccessError::InvalidPrivilege("VM.Monitor".to_string()))
    );
    assert_eq!(pve9.permissions("root@pam", "/").len(), 47);
    assert!(pve9.check("root@pam", "/vms/1", &["VM.Replicate"], false));
    assert!(!pve9.check("root@pam", "/vms/1", &["VM.Monitor"], false));

    let mut pve8 = AccessControl::new_default("pw", PVE8);
    assert_eq!(
        pve8.role_add("Ga", &["VM.GuestAgent.Audit"]),
        Err(AccessError::InvalidPrivilege(
            "VM.GuestAgent.Audit".to_string()
        ))
    );
    assert_eq!(pve8.role_add("Mon", &["VM.Monitor"]), Ok(()));
    assert_eq!(pve8.permissions("root@pam", "/").len(), 42);
}

#[test]
fn built_in_roles_follow_the_version_in_all_roles() {
    let pve9 = AccessControl::new_default("pw", PVE9).all_roles();
    let vmuser = pve9
        .get("PVEVMUser")
        .map(|(p, builtin)| (p.len(), *builtin));
    assert_eq!(vmuser, Some((10, true)));
    let pve8 = AccessControl::new_default("pw", PVE8).all_roles();
    let vmuser = pve8
        .get("PVEVMUser")
        .map(|(p, builtin)| (p.len(), *builtin));
    assert_eq!(vmuser, Some((6, true)));
}
