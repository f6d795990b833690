//! The evaluation of needs against held privileges, and the warnings it gives.

use pve_client::api::access::PropagateFlag;

use super::*;

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
