//! Runs all permission vectors of pve-access-control's own tests (`perm-test1..8`), as stored in
//! `shared/pve-reference/permission-vectors.json`, against the engine.

use std::path::PathBuf;

use serde::Deserialize;

use super::AccessControl;

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
fn reference_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pve-reference")
}

/// Loads the vectors, failing with a message that says where they should be.
fn load_vectors() -> Vectors {
    let path = reference_dir().join("permission-vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "permission vectors missing: expected {} (shared/pve-reference beside the checkout): {e}",
            path.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid vector JSON: {e}", path.display()))
}

#[test]
fn all_100_pve_access_control_vectors_pass() {
    let vectors = load_vectors();
    let mut total = 0;
    let mut failures = Vec::new();
    for suite in &vectors.suites {
        let cfg = AccessControl::from_user_cfg(&suite.user_cfg)
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
                failures.push(format!(
                    "{} {} {} {}: expected {:?}, got {:?}",
                    suite.name, check.kind, check.user, check.path, check.expect, got
                ));
            }
        }
    }
    assert_eq!(total, 100, "the vector file should hold 100 checks");
    assert!(
        failures.is_empty(),
        "{} of {total} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn vector_configs_survive_a_write_and_reread() {
    for suite in &load_vectors().suites {
        let cfg = AccessControl::from_user_cfg(&suite.user_cfg)
            .unwrap_or_else(|e| panic!("{}: {e}", suite.name));
        let written = cfg.to_user_cfg();
        let reread = AccessControl::from_user_cfg(&written)
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
}
