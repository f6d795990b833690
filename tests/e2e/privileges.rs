//! Least privilege end to end: the `pveum` commands that `pve-operator privileges` prints, run
//! verbatim against pve-sim (whose permission engine follows Proxmox VE 8), give a token with
//! which `pve-operator preflight` passes and every example's lifecycle succeeds; without any one
//! of their privileges, preflight names exactly that privilege and path, and the controller stops
//! before the step that needs it with a `PrivilegesSufficient=False` condition naming it.
//!
//! Token secrets are captured from the `user token add` output and only ever written to the
//! controller's config file; nothing here prints them.

mod images_and_mappings;

use std::path::{Path, PathBuf};

use futures::StreamExt;
use pve_client::{PveRelease, Secret};
use pve_operator::cli::preflight::{Outcome, Output, PreflightArgs, preflight};
use pve_operator::cli::privileges::{PrivilegesArgs, output};
use pve_operator::privileges::{Need, WarningKind, needs_for_specs, pveum_plan};
use pve_operator_api::{MachineRequest, MachineRequestSpec, PowerState};
use pve_sim::{PveVersion, RunningSim, SimOptions, SimServer};

use crate::support::{self, Harness, WithConditions};

/// The Proxmox VE versions the simulator can be, with the release whose privilege rows the
/// controller applies there.
const PVE9: (PveVersion, PveRelease) = (PveVersion::Pve9_1, PveRelease::new(9, 1));
const PVE8: (PveVersion, PveRelease) = (PveVersion::Pve8_4, PveRelease::PVE_8_4);
/// The release of the simulator's default (9.1), for the tests that do not depend on it.
const RELEASE: PveRelease = PVE9.1;
const USER: &str = "pve-operator@pve";
const TOKEN: &str = "controller";
const EXAMPLES: [&str; 5] = [
    "cloud-init-from-template.yaml",
    "multi-disk-multi-nic.yaml",
    "small-iso-vm.yaml",
    "stopped-vm.yaml",
    "uefi-tpm-vm.yaml",
];

fn example_paths() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    EXAMPLES.iter().map(|f| dir.join(f)).collect()
}

/// Each example's file name and spec.
fn example_specs() -> Vec<(&'static str, MachineRequestSpec)> {
    EXAMPLES
        .iter()
        .zip(example_paths())
        .map(|(file, path)| {
            let text = std::fs::read_to_string(&path).expect("example readable");
            let request: MachineRequest = serde_yaml::from_str(&text).expect("example parses");
            (*file, request.spec)
        })
        .collect()
}

fn all_needs(release: PveRelease) -> Vec<Need> {
    let specs: Vec<MachineRequestSpec> = example_specs().into_iter().map(|(_, s)| s).collect();
    needs_for_specs(&specs, release)
}

/// A simulator of `version`.
async fn sim_of(version: PveVersion) -> RunningSim {
    let mut options = SimOptions::new("privileges-root");
    options.config.pve_version = version;
    SimServer::start(options).await.expect("simulator")
}

/// Runs `commands` line by line (blank lines and comments skipped) through bash, with `pveum`
/// being `pve-sim pveum` against `sim`, exactly as a user would paste them. Returns the secret
/// printed by a `user token add` line, if any.
async fn run_pveum(sim: &RunningSim, commands: &str) -> Option<Secret> {
    let mut secret = None;
    let lines = commands
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    for line in lines {
        let output = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(format!("pveum() {{ \"$SIM_PVEUM\" \"$@\"; }}\n{line}"))
            .env("SIM_PVEUM", env!("CARGO_BIN_EXE_sim-pveum"))
            .env("PVE_SIM_URL", sim.url())
            .env("PVE_SIM_ROOT_PASSWORD", sim.root_password())
            .env("RUST_BACKTRACE", "0")
            .output()
            .await
            .expect("bash runs");
        assert!(
            output.status.success(),
            "`{line}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if line.contains(" token add ") {
            secret = Some(token_value(&String::from_utf8_lossy(&output.stdout)));
        }
    }
    secret
}

/// The `value` row of pveum's `user token add` table (never shown, not even when wrong).
fn token_value(table: &str) -> Secret {
    let value = table
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('│').map(str::trim).collect();
            (cells.get(1) == Some(&"value")).then(|| cells.get(2).map(|v| v.to_string()))
        })
        .flatten()
        .next()
        .unwrap_or_default();
    let is_uuid = value.len() == 36
        && value.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    assert!(
        is_uuid,
        "`user token add` printed a value row with a UUID secret (the output is not shown: it holds the secret)"
    );
    value.into()
}

/// The `proxmox:` config of a token on `sim`, with the certificate pinned.
fn token_config(sim: &RunningSim, token_id: &str, secret: &Secret) -> String {
    format!(
        "proxmox:\n  url: \"{}\"\n  fingerprint: \"{}\"\n  tokenID: \"{token_id}\"\n  tokenSecret: \"{}\"\n",
        sim.url(),
        sim.fingerprint(),
        secret.expose()
    )
}

/// Runs the printed `commands` on `sim`; the controller config with the token they create.
async fn printed_token(sim: &RunningSim, commands: &str) -> String {
    let secret = run_pveum(sim, commands)
        .await
        .expect("the printed commands create a token");
    token_config(sim, &format!("{USER}!{TOKEN}"), &secret)
}

/// Sets up `pveum_plan(needs)` on `sim` through `pveum` and returns the token's config.
pub(crate) async fn token_for(sim: &RunningSim, needs: &[Need]) -> String {
    printed_token(sim, &pveum_plan(needs, USER, TOKEN).commands()).await
}

/// `pve-operator preflight --config <config> -f <files>`, in process.
async fn run_preflight(config: &str, files: &[PathBuf]) -> Outcome {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).expect("config written");
    let args = PreflightArgs {
        config: path,
        files: files.to_vec(),
        output: Output::Json,
    };
    preflight(&args).await.expect("preflight could check")
}

fn pairs(needs: &[Need]) -> Vec<(String, String)> {
    needs
        .iter()
        .map(|n| (n.privilege.to_string(), n.path.clone()))
        .collect()
}

/// Waits until the request satisfies `wanted`, returning it.
async fn wait_for(
    h: &Harness,
    name: &str,
    what: &str,
    wanted: impl Fn(&MachineRequest) -> bool,
) -> MachineRequest {
    support::wait_for(&h.requests(), name, what, wanted).await
}

/// The examples (by file name) of which some step needs `need` on `release`.
fn examples_needing<'a>(
    specs: &'a [(&'static str, MachineRequestSpec)],
    need: &Need,
    release: PveRelease,
) -> Vec<&'a str> {
    specs
        .iter()
        .filter(|(_, spec)| {
            needs_for_specs(std::slice::from_ref(spec), release)
                .iter()
                .any(|n| n.privilege == need.privilege && n.path == need.path)
        })
        .map(|(file, _)| *file)
        .collect()
}

pub(crate) fn denied(request: &MachineRequest) -> Option<String> {
    request
        .condition_now("PrivilegesSufficient")
        .filter(|c| c.status == "False")
        .map(|c| c.message.clone())
}

/// The VMIDs in the simulator (read as root).
pub(crate) async fn vmids(h: &Harness) -> Vec<u32> {
    let mut ids: Vec<u32> = h
        .pve
        .cluster_resources(None)
        .await
        .expect("resources")
        .iter()
        .filter_map(|r| r.vmid)
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn on_pve9_the_printed_commands_give_a_token_that_passes_preflight_and_runs_every_example() {
    generated_commands_suffice(PVE9, "9").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_pve8_4_the_printed_commands_give_a_token_that_passes_preflight_and_runs_every_example()
{
    generated_commands_suffice(PVE8, "8.4").await;
}

/// What `pve-operator privileges -f <files> --pve-version <flag>` prints for `release`.
fn printed_commands(files: Vec<PathBuf>, flag: &str, release: PveRelease) -> String {
    let args = PrivilegesArgs {
        files,
        user: USER.into(),
        token: TOKEN.into(),
        markdown: false,
        pve_version: Some(flag.parse().expect("a release")),
        config: None,
        pool: None,
    };
    output(&args, release).expect("pve-operator privileges prints the commands")
}

/// `pve-operator privileges --pve-version <flag>` for the examples, run through `pveum` on a
/// simulator of that version: preflight passes, every example becomes Ready, is powered and
/// deleted as it says.
async fn generated_commands_suffice((version, release): (PveVersion, PveRelease), flag: &str) {
    let commands = printed_commands(example_paths(), flag, release);
    assert!(
        commands.starts_with(&format!("# For Proxmox VE {release}")),
        "{commands}"
    );
    let needs = all_needs(release);
    let prefix = format!("least-privilege-{}", version.major());
    let h = Harness::start_with_config_on(&prefix, version, async |sim: &RunningSim| {
        printed_token(sim, &commands).await
    })
    .await;

    let config = std::fs::read_to_string(&h.config_path).expect("controller config");
    let outcome = run_preflight(&config, &example_paths()).await;
    assert_eq!(
        outcome.exit_code(),
        0,
        "preflight passes: {:?}",
        outcome.report.missing
    );
    assert_eq!(pairs(&outcome.report.present), pairs(&needs));
    assert!(
        outcome.report.warnings.is_empty(),
        "nothing dangerous, no risky setting: {:?}",
        outcome.report.warnings
    );
    assert_eq!(outcome.report.identity, format!("API token {USER}!{TOKEN}"));

    // The whole lifecycle of every example: created, configured, powered as specified.
    let mut names = Vec::new();
    for file in EXAMPLES {
        names.push(h.apply_example(file).await);
    }
    let mut vms = Vec::new();
    for name in &names {
        let request = h.wait_ready(name).await;
        assert!(denied(&request).is_none(), "{name}: {:?}", denied(&request));
        let status = request.status.clone().expect("status");
        let vmid = status.vmid.expect("vmid");
        let running = h.vm_running(vmid).await;
        assert_eq!(
            running,
            request.spec.power_state == PowerState::Running,
            "{name}: power state"
        );
        vms.push((name.clone(), vmid, request.spec.clone()));
    }
    // A power change: the ISO VM is stopped through the controller.
    let (name, vmid, spec) = vms
        .iter()
        .find(|(n, _, _)| n == "small-iso-vm")
        .expect("small-iso-vm")
        .clone();
    let mut stopped = serde_json::to_value(&spec).expect("spec serialises");
    stopped["powerState"] = "Stopped".into();
    h.apply(&name, stopped).await;
    wait_for(&h, &name, "small-iso-vm to be stopped", |r| {
        r.metadata.generation == r.status.as_ref().and_then(|s| s.observed_generation)
            && r.status.as_ref().and_then(|s| s.phase) == Some(pve_operator_api::Phase::Stopped)
    })
    .await;
    assert!(!h.vm_running(vmid).await);
    // Deletion as each example's policy says.
    for (name, vmid, spec) in &vms {
        h.delete_and_wait_gone(name).await;
        let exists = vmids(&h).await.contains(vmid);
        match spec.deletion_policy {
            pve_operator_api::DeletionPolicy::Delete => {
                assert!(!exists, "{name}: VM {vmid} destroyed")
            }
            pve_operator_api::DeletionPolicy::Retain => assert!(exists, "{name}: VM {vmid} kept"),
        }
    }
    h.stop().await;
}

/// `pve-operator privileges --pool k8s` for the examples put in pool `k8s` (the template named by
/// VMID), run as printed: the token holds VM privileges on `/pool/k8s` and on the template only,
/// passes preflight, and every example becomes Ready in the pool and is deleted.
#[tokio::test(flavor = "multi_thread")]
async fn on_pve9_the_pool_scoped_commands_suffice_for_every_example_in_that_pool() {
    const POOL: &str = "k8s";
    let dir = tempfile::tempdir().expect("temp dir");
    let mut pooled = Vec::new();
    for (file, mut spec) in example_specs() {
        spec.pool = Some(POOL.into());
        // With --pool a template is named by VMID (the privileges go on it alone).
        if let Some(template) = spec.boot.template.as_mut() {
            template.vmid = Some(9000);
            template.name = None;
        }
        let path = dir.path().join(file);
        let request = serde_json::json!({
            "apiVersion": "pve-operator.dev/v1alpha1",
            "kind": "MachineRequest",
            "metadata": { "name": file.trim_end_matches(".yaml") },
            "spec": spec,
        });
        std::fs::write(&path, serde_yaml::to_string(&request).expect("YAML")).expect("written");
        pooled.push((file.trim_end_matches(".yaml").to_string(), path, spec));
    }
    let files: Vec<PathBuf> = pooled.iter().map(|(_, p, _)| p.clone()).collect();
    let args = PrivilegesArgs {
        files: files.clone(),
        user: USER.into(),
        token: TOKEN.into(),
        markdown: false,
        pve_version: Some(RELEASE),
        config: None,
        pool: Some(POOL.into()),
    };
    let printed = output(&args, RELEASE).expect("the pool-scoped commands");
    assert!(
        !printed.contains(" /vms "),
        "nothing on every VM: {printed}"
    );
    let commands = printed
        .replace("# replace the <placeholder>: ", "")
        .replace("<template vmid>", "9000");
    assert!(
        !commands.contains('<'),
        "only the template was a placeholder: {commands}"
    );
    let h = Harness::start_with_config_on("pool-scoped", PVE9.0, async |sim: &RunningSim| {
        run_pveum(sim, &format!("pveum pool add {POOL}")).await;
        printed_token(sim, &commands).await
    })
    .await;
    let config = std::fs::read_to_string(&h.config_path).expect("controller config");
    let outcome = run_preflight(&config, &files).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.report.missing);
    for (name, _, spec) in &pooled {
        h.apply(name, serde_json::to_value(spec).expect("spec"))
            .await;
    }
    for (name, _, _) in &pooled {
        let request = h.wait_ready(name).await;
        let vmid = request.status.and_then(|s| s.vmid).expect("vmid");
        let members = h.sim.with_state(|s| {
            s.access
                .pool(POOL)
                .map(|p| p.vms.clone())
                .unwrap_or_default()
        });
        assert!(
            members.contains(&vmid),
            "{name}: VM {vmid} in pool {POOL}: {members:?}"
        );
    }
    for (name, _, _) in &pooled {
        h.delete_and_wait_gone(name).await;
    }
    h.stop().await;
}

/// A custom CPU model on 9.1: the generated commands grant `Mapping.Use` on its mapping and the
/// request becomes Ready; without it the request stops before anything is made, its condition
/// naming the privilege and the mapping's path.
#[tokio::test(flavor = "multi_thread")]
async fn on_pve9_a_custom_cpu_model_needs_mapping_use_on_its_mapping() {
    let mut spec = crate::support::small_spec();
    spec["cpu"] = serde_json::json!({ "type": "custom-epyc" });
    spec["placement"] = serde_json::json!({ "node": "pve" });
    let typed: MachineRequestSpec = serde_json::from_value(spec.clone()).expect("a spec");
    let needs = needs_for_specs(std::slice::from_ref(&typed), RELEASE);
    let mapping = Need {
        privilege: "Mapping.Use",
        path: "/mapping/cpu/epyc".into(),
        needed_for: "custom CPU model epyc".into(),
    };
    assert!(needs.contains(&mapping), "{needs:#?}");
    for (with_mapping, prefix) in [(true, "custom-cpu"), (false, "custom-cpu-denied")] {
        let granted: Vec<Need> = needs
            .iter()
            .filter(|n| with_mapping || **n != mapping)
            .cloned()
            .collect();
        let h = Harness::start_with_config(prefix, async |sim: &RunningSim| {
            token_for(sim, &granted).await
        })
        .await;
        h.apply("epyc", spec.clone()).await;
        if with_mapping {
            let request = h.wait_ready("epyc").await;
            let vmid = request.status.and_then(|s| s.vmid).expect("vmid");
            let config = h.vm_config(vmid).await.expect("config");
            assert_eq!(config.get("cpu"), Some("custom-epyc"));
        } else {
            let before = vmids(&h).await;
            let request = wait_for(&h, "epyc", "PrivilegesSufficient=False", |r| {
                denied(r).is_some()
            })
            .await;
            let message = denied(&request).unwrap_or_default();
            assert!(
                message.contains("Mapping.Use on /mapping/cpu/epyc (for custom CPU model epyc)"),
                "{message}"
            );
            assert_eq!(vmids(&h).await, before, "nothing was created");
        }
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_pve9_without_any_one_generated_privilege_preflight_names_exactly_that_one() {
    preflight_ablation(PVE9).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_pve8_4_without_any_one_generated_privilege_preflight_names_exactly_that_one() {
    preflight_ablation(PVE8).await;
}

/// Every generated privilege removed in turn (a simulator each): preflight names exactly it.
async fn preflight_ablation((version, release): (PveVersion, PveRelease)) {
    let needs = all_needs(release);
    let plan = pveum_plan(&needs, USER, TOKEN);
    let in_roles: usize = plan.roles.values().map(Vec::len).sum();
    assert!(
        needs.len() >= in_roles,
        "every role privilege is a need on some path"
    );
    let results =
        preflight_without_each((version, release), &needs, &needs, &example_paths()).await;
    assert_names_exactly_the_removed(&results, needs.len());
}

/// Preflight of `files` on a simulator of `version` (one each, several at once) for a token
/// with every one of `needs` but one of `removed`.
async fn preflight_without_each(
    (version, release): (PveVersion, PveRelease),
    needs: &[Need],
    removed: &[Need],
    files: &[PathBuf],
) -> Vec<(Need, Outcome)> {
    let results: Vec<(Need, Outcome)> = futures::stream::iter(removed.to_vec())
        .map(|removed| async move {
            let sim = sim_of(version).await;
            let reduced: Vec<Need> = needs.iter().filter(|n| **n != removed).cloned().collect();
            let config = token_for(&sim, &reduced).await;
            let outcome = run_preflight(&config, files).await;
            assert_eq!(
                outcome.release, release,
                "preflight judged by the server's release"
            );
            sim.shutdown().await;
            (removed, outcome)
        })
        .buffer_unordered(6)
        .collect()
        .await;
    assert_eq!(results.len(), removed.len());
    results
}

/// Each outcome fails preflight naming exactly its removed need, the other `total - 1` present.
fn assert_names_exactly_the_removed(results: &[(Need, Outcome)], total: usize) {
    for (removed, outcome) in results {
        assert_eq!(
            pairs(&outcome.report.missing),
            pairs(std::slice::from_ref(removed)),
            "without {} on {}, exactly that is missing",
            removed.privilege,
            removed.path
        );
        assert_eq!(outcome.report.present.len(), total - 1);
        assert_eq!(outcome.exit_code(), 1);
    }
}

/// The whole ablation on 9.x, the first target; on 8.4 the rows that differ from 9.x (the
/// others are the same privilege on the same path, checked by the same code).
#[tokio::test(flavor = "multi_thread")]
async fn on_pve9_without_any_one_generated_privilege_the_request_needing_it_stops_before_sending() {
    controller_ablation(PVE9, |_| true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_pve8_4_without_vm_monitor_the_request_needing_it_stops_before_sending() {
    let nine = all_needs(PVE9.1);
    controller_ablation(PVE8, |need| !nine.contains(need)).await;
}

/// Each generated privilege that `sample` picks removed in turn (a controller and simulator
/// each): the requests needing it stop with a condition naming exactly it, and nothing is made.
async fn controller_ablation(
    (version, release): (PveVersion, PveRelease),
    sample: impl Fn(&Need) -> bool,
) {
    let all = all_needs(release);
    let needs: Vec<Need> = all.iter().filter(|n| sample(n)).cloned().collect();
    assert!(!needs.is_empty(), "some privilege to remove");
    let specs = example_specs();
    let started = std::time::Instant::now();
    let checked: Vec<usize> = futures::stream::iter(needs.iter().enumerate())
        .map(|(i, removed)| {
            let all = &all;
            let specs = &specs;
            async move {
                let reduced: Vec<Need> = all.iter().filter(|n| *n != removed).cloned().collect();
                let h = Harness::start_with_config_on(
                    &format!("no-priv-{}-{i}", version.major()),
                    version,
                    async |sim: &RunningSim| token_for(sim, &reduced).await,
                )
                .await;
                let before = vmids(&h).await;
                let affected = examples_needing(specs, removed, release);
                assert!(!affected.is_empty(), "some example needs {removed}");
                let mut names = Vec::new();
                for file in &affected {
                    names.push(h.apply_example(file).await);
                }
                let wanted = format!("{} on {} (for", removed.privilege, removed.path);
                for name in &names {
                    let request = wait_for(&h, name, "PrivilegesSufficient=False", |r| {
                        denied(r).is_some()
                    })
                    .await;
                    let message = denied(&request).unwrap_or_default();
                    assert!(message.contains(&wanted), "{name}: {message}");
                    for other in all.iter().filter(|n| *n != removed) {
                        let named = format!("{} on {} (for", other.privilege, other.path);
                        assert!(
                            !message.contains(&named),
                            "{name} names only {removed}: {message}"
                        );
                    }
                    let ready = request.condition_now("Ready").expect("Ready condition");
                    assert_eq!(ready.status, "False");
                }
                assert_eq!(vmids(&h).await, before, "nothing was created");
                h.stop().await;
                affected.len()
            }
        })
        .buffer_unordered(6)
        .collect()
        .await;
    assert_eq!(checked.len(), needs.len());
    eprintln!(
        "{} privileges checked at the controller in {:?}",
        needs.len(),
        started.elapsed()
    );
}

fn kinds(outcome: &Outcome) -> Vec<WarningKind> {
    outcome.report.warnings.iter().map(|w| w.kind).collect()
}

fn dangerous(outcome: &Outcome) -> Vec<(String, String)> {
    outcome
        .report
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::DangerousPrivilege)
        .map(|w| {
            (
                w.privilege.clone().unwrap_or_default(),
                w.path.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn root_a_token_without_privsep_and_dangerous_surplus_privileges_are_warnings() {
    let sim = SimServer::start(SimOptions::new("privileges-root"))
        .await
        .expect("simulator");
    let files = example_paths();

    // root@pam with a password: everything is held, and that is the warning.
    let root = sim.root_config_yaml();
    let outcome = run_preflight(&root, &files).await;
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(
        kinds(&outcome),
        [WarningKind::RootUser, WarningKind::PasswordLogin]
    );

    // A token without privilege separation of an administrator: it can read its own settings
    // (User.Modify), so privsep=0 is known, and every dangerous privilege is listed.
    let secret = run_pveum(
        &sim,
        "pveum user add admin@pve\n\
         pveum aclmod / -user admin@pve -role Administrator\n\
         pveum user token add admin@pve everything --privsep 0\n",
    )
    .await
    .expect("token");
    let outcome = run_preflight(&token_config(&sim, "admin@pve!everything", &secret), &files).await;
    assert_eq!(outcome.exit_code(), 0);
    assert_eq!(
        outcome.report.privsep.as_ref().and_then(|p| p.privsep),
        Some(false)
    );
    assert!(kinds(&outcome).contains(&WarningKind::TokenWithoutPrivsep));
    let mut flagged: Vec<String> = dangerous(&outcome).into_iter().map(|(p, _)| p).collect();
    flagged.sort();
    let mut every: Vec<String> = pve_operator::privileges::DANGEROUS_PRIVILEGES
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    every.sort();
    assert_eq!(flagged, every, "Pool.Allocate too: no example uses a pool");

    // The generated least-privilege token plus a surplus role on /, over unverified TLS.
    let mut commands = pveum_plan(&all_needs(RELEASE), USER, TOKEN).commands();
    commands.push_str(&format!(
        "pveum role add Surplus -privs \"Sys.Modify,VM.Console\"\n\
         pveum aclmod / -user {USER} -role Surplus\n\
         pveum aclmod / -token '{USER}!{TOKEN}' -role Surplus\n"
    ));
    let secret = run_pveum(&sim, &commands).await.expect("token");
    let insecure = token_config(&sim, &format!("{USER}!{TOKEN}"), &secret).replace(
        "  fingerprint:",
        "  insecureSkipVerify: true\n  # fingerprint:",
    );
    let outcome = run_preflight(&insecure, &files).await;
    assert_eq!(outcome.exit_code(), 0, "{:?}", outcome.report.missing);
    assert_eq!(
        dangerous(&outcome),
        [
            ("Sys.Modify".to_string(), "/".to_string()),
            ("VM.Console".to_string(), "/".to_string())
        ]
    );
    assert!(kinds(&outcome).contains(&WarningKind::InsecureSkipVerify));
    assert!(
        !kinds(&outcome).contains(&WarningKind::TokenWithoutPrivsep),
        "privsep=1 is not flagged"
    );
    assert_eq!(
        outcome.report.privsep.as_ref().map(|p| p.privsep),
        Some(None),
        "a least-privilege token cannot read its own settings: unknown, and said so"
    );
    sim.shutdown().await;
}

/// Proxmox checks `/vms/<vmid>`: a VM role on `/vms` without propagation grants nothing there.
#[tokio::test(flavor = "multi_thread")]
async fn a_vm_role_on_vms_without_propagation_counts_as_missing_with_a_warning() {
    let files = example_paths();
    let sim = SimServer::start(SimOptions::new("privileges-root"))
        .await
        .expect("simulator");
    let needs = all_needs(RELEASE);
    let commands: String = pveum_plan(&needs, USER, TOKEN)
        .commands()
        .lines()
        .map(|line| {
            if line.starts_with("pveum aclmod /vms ") {
                format!("{line} -propagate 0\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    let secret = run_pveum(&sim, &commands).await.expect("token");
    let outcome = run_preflight(
        &token_config(&sim, &format!("{USER}!{TOKEN}"), &secret),
        &files,
    )
    .await;
    let on_vms: Vec<(String, String)> = pairs(&needs)
        .into_iter()
        .filter(|(_, path)| path == "/vms")
        .collect();
    assert_eq!(pairs(&outcome.report.missing), on_vms);
    assert_eq!(outcome.exit_code(), 1);
    assert_eq!(
        kinds(&outcome)
            .iter()
            .filter(|k| **k == WarningKind::NotPropagated)
            .count(),
        on_vms.len()
    );
    sim.shutdown().await;
}

/// Gives role `role` exactly `privileges`, through pveum.
async fn set_role(sim: &RunningSim, role: &str, privileges: &[&str]) {
    run_pveum(
        sim,
        &format!(
            "pveum role modify {role} -privs \"{}\"",
            privileges.join(",")
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_power_or_delete_privilege_stops_that_step_with_a_condition_naming_it() {
    let needs = all_needs(RELEASE);
    let plan = pveum_plan(&needs, USER, TOKEN);
    let vm_role = plan
        .roles
        .iter()
        .find(|(_, p)| p.contains(&"VM.PowerMgmt"))
        .map(|(name, p)| (name.clone(), p.clone()))
        .expect("a role with the VM privileges");
    let without = |privilege: &str| -> Vec<&str> {
        vm_role
            .1
            .iter()
            .copied()
            .filter(|p| *p != privilege)
            .collect()
    };
    let mut h = Harness::start_with_config("revoked", async |sim: &RunningSim| {
        token_for(sim, &needs).await
    })
    .await;
    let name = h.apply_example("small-iso-vm.yaml").await;
    let request = h.wait_ready(&name).await;
    let vmid = request.status.as_ref().and_then(|s| s.vmid).expect("vmid");
    let mut spec = serde_json::to_value(&request.spec).expect("spec serialises");

    // No VM.PowerMgmt: the shutdown is not sent. (The controller caches its permissions for a
    // minute; a restarted one reads them anew.)
    set_role(&h.sim, &vm_role.0, &without("VM.PowerMgmt")).await;
    h.crash_controller().await;
    h.start_controller();
    spec["powerState"] = "Stopped".into();
    h.apply(&name, spec.clone()).await;
    let request = wait_for(&h, &name, "the power change to be refused", |r| {
        denied(r).is_some()
    })
    .await;
    let message = denied(&request).unwrap_or_default();
    assert!(
        message.contains("VM.PowerMgmt on /vms (for")
            && message.contains("changing the VM's power state was not attempted"),
        "{message}"
    );
    assert!(
        h.vm_running(vmid).await,
        "still running: no shutdown was sent"
    );

    // VM.PowerMgmt back, VM.Allocate gone: the VM stops, its deletion is not sent.
    set_role(&h.sim, &vm_role.0, &without("VM.Allocate")).await;
    h.crash_controller().await;
    h.start_controller();
    wait_for(
        &h,
        &name,
        "the VM to stop and the condition to clear",
        |r| {
            r.status.as_ref().and_then(|s| s.phase) == Some(pve_operator_api::Phase::Stopped)
                && r.condition_now("PrivilegesSufficient")
                    .is_some_and(|c| c.status == "True")
        },
    )
    .await;
    h.requests()
        .delete(&name, &Default::default())
        .await
        .expect("delete accepted");
    let request = wait_for(&h, &name, "the deletion to be refused", |r| {
        r.metadata.deletion_timestamp.is_some() && denied(r).is_some()
    })
    .await;
    let message = denied(&request).unwrap_or_default();
    assert!(
        message.contains("VM.Allocate on /vms (for")
            && message.contains("deleting the VM was not attempted"),
        "{message}"
    );
    assert!(vmids(&h).await.contains(&vmid), "the VM is kept");

    // Everything back: the deletion completes.
    set_role(&h.sim, &vm_role.0, &vm_role.1).await;
    h.crash_controller().await;
    h.start_controller();
    support::wait_gone(&h.requests(), &name).await;
    assert!(!vmids(&h).await.contains(&vmid), "VM {vmid} destroyed");
    h.stop().await;
}

/// Makes `GET /access/permissions` answer 501, as a Proxmox that cannot report permissions:
/// the controller then sends its requests unchecked, and Proxmox itself decides.
fn without_permission_reports(sim: &RunningSim) {
    use pve_sim::faults::{FaultConfig, FaultKind, FaultRule};
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
}

/// A client with the credentials of `config`.
fn client(config: &str) -> pve_client::PveClient {
    pve_client::PveClient::new(&pve_client::PveConfig::from_yaml_str(config).expect("config"))
        .expect("client")
}

/// Whether `message` (a condition) reports Proxmox's own refusal of `removed`: the privilege
/// on its path or, for a path that stands for its children, on a child (`/vms` → `/vms/100`).
/// Creating without VM.Allocate gets Proxmox's bare `Permission check failed`.
fn refusal_names(message: &str, removed: &Need) -> bool {
    if !message.starts_with("Proxmox refused: missing ") {
        return false;
    }
    if removed.privilege == "VM.Allocate" {
        return message.contains("— Proxmox said: Permission check failed)");
    }
    let named = message
        .trim_start_matches("Proxmox refused: missing ")
        .split(" (")
        .next()
        .unwrap_or_default();
    let Some((privileges, path)) = named.split_once(" on ") else {
        return false;
    };
    privileges.split(" or ").any(|p| p == removed.privilege)
        && (path == removed.path || path.starts_with(&format!("{}/", removed.path)))
}

/// The simulator's permission engine follows Proxmox VE 8 and shares no code with the
/// controller's table: with `/access/permissions` unavailable, the controller cannot check
/// first, sends its requests, and Proxmox itself refuses the step that needs the removed
/// privilege. Three privileges are not refused by any call of the lifecycle and are shown
/// directly instead: VM.Audit (without it Proxmox hides the VMs, so the controller could not
/// find its own again), Sys.Audit on /nodes (nodes are listed without memory figures, so
/// placement cannot compare free memory) and VM.GuestAgent.Audit (the guest agent's addresses, read
/// best-effort).
#[tokio::test(flavor = "multi_thread")]
async fn proxmox_itself_refuses_what_needs_each_generated_privilege() {
    let needs = all_needs(RELEASE);
    let specs = example_specs();
    let checked: Vec<String> = futures::stream::iter(needs.iter().enumerate())
        .map(|(i, removed)| {
            let needs = &needs;
            let specs = &specs;
            async move {
                let reduced: Vec<Need> = needs.iter().filter(|n| *n != removed).cloned().collect();
                match (removed.privilege, removed.path.as_str()) {
                    ("VM.Audit", _) | ("Sys.Audit", "/nodes") => {
                        let sim = SimServer::start(SimOptions::new("privileges-root"))
                            .await
                            .expect("simulator");
                        let token = client(&token_for(&sim, &reduced).await);
                        let resources = token.cluster_resources(None).await.expect("resources");
                        if removed.privilege == "VM.Audit" {
                            assert!(
                                resources.iter().all(|r| r.vmid.is_none()),
                                "without VM.Audit no VM is listed, not even template 9000"
                            );
                            match token.qemu_config("pve", 9000).await {
                                Err(pve_client::PveError::PermissionDenied {
                                    path,
                                    privileges,
                                    ..
                                }) => {
                                    assert_eq!(path.as_deref(), Some("/vms/9000"));
                                    assert_eq!(privileges, ["VM.Audit"]);
                                }
                                other => panic!("reading a config needs VM.Audit: {other:?}"),
                            }
                        } else {
                            let node = resources
                                .iter()
                                .find(|r| r.resource_type == "node")
                                .expect("nodes are listed");
                            assert!(
                                node.maxmem.is_none() && node.mem.is_none(),
                                "without Sys.Audit on /nodes, no memory figures: {node:?}"
                            );
                        }
                        sim.shutdown().await;
                        return format!("{removed}: shown directly");
                    }
                    _ => {}
                }
                let h = Harness::start_with_config(
                    &format!("refused-{i}"),
                    async |sim: &RunningSim| {
                        without_permission_reports(sim);
                        token_for(sim, &reduced).await
                    },
                )
                .await;
                let affected = examples_needing(specs, removed, RELEASE);
                let mut refused = Vec::new();
                for file in &affected {
                    let name = h.apply_example(file).await;
                    let request = wait_for(&h, &name, "a refusal or Ready", |r| {
                        denied(r).is_some()
                            || r.condition_now("Ready").is_some_and(|c| c.status == "True")
                    })
                    .await;
                    match denied(&request) {
                        Some(message) => {
                            assert!(refusal_names(&message, removed), "{name}: {message}");
                            refused.push(name);
                        }
                        None if matches!(
                            removed.privilege,
                            "VM.Monitor" | "VM.GuestAgent.Audit"
                        ) =>
                        {
                            let vmid = request.status.as_ref().and_then(|s| s.vmid).expect("vmid");
                            let token =
                                client(&std::fs::read_to_string(&h.config_path).expect("config"));
                            match token.qemu_agent_network("pve", vmid).await {
                                Err(pve_client::PveError::PermissionDenied {
                                    privileges, ..
                                }) => {
                                    // 9.x names either privilege that would do (`any`).
                                    assert!(
                                        privileges.iter().any(|p| p == removed.privilege),
                                        "{privileges:?}"
                                    );
                                    refused.push(name);
                                }
                                other => panic!("the agent needs {}: {other:?}", removed.privilege),
                            }
                            let addresses =
                                request.status.map(|s| s.ip_addresses).unwrap_or_default();
                            assert!(addresses.is_empty(), "no addresses: {addresses:?}");
                        }
                        // This example happens not to send what needs it (a clone whose
                        // template already has the requested CPU, memory and NIC).
                        None => {}
                    }
                }
                assert!(
                    !refused.is_empty(),
                    "Proxmox refuses something of {affected:?} without {removed}"
                );
                h.stop().await;
                format!("{removed}: refused for {refused:?}")
            }
        })
        .buffer_unordered(6)
        .collect()
        .await;
    assert_eq!(checked.len(), needs.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxmox_cluster_reports_whether_its_credentials_suffice_for_the_requests_using_it() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::Api;
    use pve_operator_api::ProxmoxCluster;

    let h = Harness::start("cluster-privileges").await;
    // A token for small-iso-vm, without SDN.Use on its bridge.
    let (_, spec) = example_specs()
        .into_iter()
        .find(|(file, _)| *file == "small-iso-vm.yaml")
        .expect("example");
    let bridge = "/sdn/zones/localnetwork/vmbr0";
    let reduced: Vec<Need> = needs_for_specs(std::slice::from_ref(&spec), RELEASE)
        .into_iter()
        .filter(|n| !(n.privilege == "SDN.Use" && n.path == bridge))
        .collect();
    let config = token_for(&h.sim, &reduced).await;
    let identity = h
        .create_identity(
            "least",
            &config,
            serde_json::json!({ "allowedNamespaces": { "list": [h.namespace] } }),
        )
        .await;
    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), &h.namespace);
    let clusters: Api<ProxmoxCluster> = Api::namespaced(h.client.clone(), &h.namespace);
    // A change of the identity's Secret (here only a label) makes the cluster look again.
    let apply_secret = async |generation: &str| {
        let doc = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": identity, "labels": { "touched": generation } },
            "stringData": { "config.yaml": config },
        });
        support::apply_forced(&secrets, "e2e-tests", &identity, &doc).await;
    };
    h.create_cluster("least", &identity, serde_json::json!({}))
        .await;
    let privileges_condition = async |wanted: &dyn Fn(&str, &str) -> bool| {
        let what = "the ProxmoxCluster's PrivilegesSufficient condition";
        support::wait_for(&clusters, "least", what, |cluster| {
            cluster
                .condition_now("PrivilegesSufficient")
                .is_some_and(|c| wanted(&c.status, &c.message))
        })
        .await
        .message_of("PrivilegesSufficient")
    };
    // No request uses it yet: every feature, storages and bridges in general.
    let message = privileges_condition(&|status, message| {
        status == "False" && message.contains("every feature")
    })
    .await;
    assert!(
        message.contains("Datastore.AllocateSpace on /storage (for"),
        "{message}"
    );

    // A request on the cluster: the condition covers exactly its needs.
    let mut request = serde_json::to_value(&spec).expect("spec serialises");
    request["clusterRef"] = serde_json::json!({ "name": "least" });
    h.apply("on-least", request).await;
    let denied_request = wait_for(&h, "on-least", "the request to be refused", |r| {
        denied(r).is_some()
    })
    .await;
    assert!(
        denied(&denied_request)
            .unwrap_or_default()
            .contains(&format!("SDN.Use on {bridge} (for")),
        "{:?}",
        denied(&denied_request)
    );
    apply_secret("2").await;
    let message = privileges_condition(&|status, message| {
        status == "False" && message.contains("1 MachineRequest(s)")
    })
    .await;
    let wanted = format!("SDN.Use on {bridge} (for");
    assert!(message.contains(&wanted), "{message}");
    assert_eq!(
        message.matches(" on /").count(),
        1,
        "only that one is missing: {message}"
    );

    // Granted: the condition turns True at the next check.
    run_pveum(
        &h.sim,
        &format!(
            "pveum aclmod {bridge} -user {USER} -role PVESDNUser\n\
             pveum aclmod {bridge} -token '{USER}!{TOKEN}' -role PVESDNUser\n"
        ),
    )
    .await;
    apply_secret("3").await;
    let message = privileges_condition(&|status, _| status == "True").await;
    assert!(message.contains("1 MachineRequest(s)"), "{message}");
    h.stop().await;
}

#[tokio::test]
async fn without_vm_audit_and_without_a_permission_report_the_controller_makes_one_vm_and_says_why()
{
    // The hazard: a token that cannot see VMs cannot find the one it created. With its own
    // check unavailable (Proxmox answers 501 to /access/permissions), the controller must still
    // not create a VM on every pass.
    let without_audit: Vec<Need> = all_needs(RELEASE)
        .into_iter()
        .filter(|n| n.privilege != "VM.Audit")
        .collect();
    let h = Harness::start_with_config("no-vm-audit", async |sim: &RunningSim| {
        without_permission_reports(sim);
        token_for(sim, &without_audit).await
    })
    .await;
    let name = h.apply_example("small-iso-vm.yaml").await;
    let request = wait_for(&h, &name, "a condition naming VM.Audit", |r| {
        denied(r).is_some_and(|m| m.contains("VM.Audit"))
    })
    .await;
    let message = denied(&request).unwrap_or_default();
    assert!(message.contains("cannot see"), "says why: {message}");
    // Passes keep coming (backoff); none of them may add a VM.
    let first = vmids(&h).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let later = vmids(&h).await;
    assert_eq!(first, later, "no further VMs while the controller is blind");
    let created: Vec<u32> = later.iter().copied().filter(|id| *id != 9000).collect();
    assert_eq!(created.len(), 1, "exactly one VM was created: {created:?}");
    h.stop().await;
}
