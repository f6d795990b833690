//! Runs all permission vectors of pve-access-control's own tests (`perm-test1..8`), as stored in
//! `shared/pve-reference/permission-vectors.json` (PVE 8) and `permission-vectors-pve9.json`
//! (PVE 9.x), against the engine in that version.

use std::path::PathBuf;

use serde::Deserialize;

use super::AccessControl;
use crate::version::PveVersion;

/// The vector file.
#[derive(Deserialize)]
struct Vectors {
    suites: Vec<Suite>,
}

/// One `perm-testN` suite: a `user.cfg` and its checks.
#[derive(Deserialize)]
struct Suite {
    name: String,
    user_cfg: String,
    checks: Vec<Check>,
}

/// One expectation.
#[derive(Deserialize)]
struct Check {
    kind: String,
    user: String,
    path: String,
    expect: Vec<String>,
}

/// Where the reference material lives (beside the checkout).
pub(super) fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pve-reference")
}

/// The vector file of a version.
fn vector_file(version: PveVersion) -> &'static str {
    match version {
        PveVersion::Pve8_4 => "permission-vectors.json",
        PveVersion::Pve9_1 => "permission-vectors-pve9.json",
    }
}

/// Loads the vectors of `version`, failing with a message that says where they should be.
fn load_vectors(version: PveVersion) -> Vectors {
    let path = reference_dir().join(vector_file(version));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "permission vectors missing: expected {} (shared/pve-reference beside the checkout): {e}",
            path.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid vector JSON: {e}", path.display()))
}

/// A failed check: `suite user path`, and what was expected and got.
struct Failure {
    at: String,
    detail: String,
}

/// Runs every check of `file_of`'s vector file with the engine in `mode`; returns the failures
/// and the number of checks.
fn run_vectors(file_of: PveVersion, mode: PveVersion) -> (Vec<Failure>, usize) {
    let vectors = load_vectors(file_of);
    let mut total = 0;
    let mut failures = Vec::new();
    for suite in &vectors.suites {
        let cfg = AccessControl::from_user_cfg(&suite.user_cfg, mode)
            .unwrap_or_else(|e| panic!("{}: user.cfg rejected: {e}", suite.name));
        for check in &suite.checks {
            total += 1;
            let got: Vec<String> = match check.kind.as_str() {
                "roles" => cfg.roles(&check.user, &check.path).into_iter().collect(),
                "permissions" => cfg
                    .permissions(&check.user, &check.path)
                    .into_iter()
                    .collect(),
                other => panic!("{}: unknown check kind {other}", suite.name),
            };
            if got != check.expect {
                failures.push(Failure {
                    at: format!("{} {} {}", suite.name, check.user, check.path),
                    detail: format!("{}: expected {:?}, got {:?}", check.kind, check.expect, got),
                });
            }
        }
    }
    (failures, total)
}

/// Asserts that all 100 checks of `version`'s file pass in `version` mode.
fn assert_all_vectors_pass(version: PveVersion) {
    let (failures, total) = run_vectors(version, version);
    assert_eq!(total, 100, "the vector file should hold 100 checks");
    let lines: Vec<String> = failures
        .iter()
        .map(|f| format!("{} {}", f.at, f.detail))
        .collect();
    assert!(
        lines.is_empty(),
        "{version}: {} of {total} vectors failed:\n{}",
        lines.len(),
        lines.join("\n")
    );
}

#[test]
fn all_100_pve8_access_control_vectors_pass_in_8_4_mode() {
    assert_all_vectors_pass(PveVersion::Pve8_4);
}

#[test]
fn all_100_pve9_access_control_vectors_pass_in_9_1_mode() {
    assert_all_vectors_pass(PveVersion::Pve9_1);
}

#[test]
fn each_version_fails_exactly_the_two_built_in_role_vectors_of_the_other() {
    // The files differ only in the PVEVMAdmin and Administrator sets of perm-test1: run across
    // versions, exactly those two fail, so each file really pins its own version's roles.
    for (file_of, mode) in [
        (PveVersion::Pve8_4, PveVersion::Pve9_1),
        (PveVersion::Pve9_1, PveVersion::Pve8_4),
    ] {
        let (failures, _) = run_vectors(file_of, mode);
        let at: Vec<&str> = failures.iter().map(|f| f.at.as_str()).collect();
        assert_eq!(
            at,
            [
                "perm-test1 alex@pve /vms/300",
                "perm-test1 alex@pve /vms/400"
            ],
            "{file_of} vectors in {mode} mode"
        );
    }
}

#[test]
fn vector_configs_survive_a_write_and_reread() {
    for version in PveVersion::ALL {
        for suite in &load_vectors(version).suites {
            check_reread(version, suite);
        }
    }
}

/// Writes a suite's configuration, reads it back in `version` mode and compares.
fn check_reread(version: PveVersion, suite: &Suite) {
    let cfg = AccessControl::from_user_cfg(&suite.user_cfg, version)
        .unwrap_or_else(|e| panic!("{}: {e}", suite.name));
    let written = cfg.to_user_cfg();
    let reread = AccessControl::from_user_cfg(&written, version)
        .unwrap_or_else(|e| panic!("{}: rewritten cfg rejected: {e}", suite.name));
    assert_eq!(reread, cfg, "{}: written as\n{written}", suite.name);
    for check in &suite.checks {
        assert_eq!(
            reread.permissions(&check.user, &check.path),
            cfg.permissions(&check.user, &check.path),
            "{} {} {}",
            suite.name,
            check.user,
            check.path
        );
    }
}
