//! The kill runs CI makes: one per scenario (create, clone, drift, delete,
//! delete-while-creating), all from one base seed, and a check that a seed draws one plan
//! inside its window and that a series reaches every window.

use super::{KillMode, SEED_VAR, Scenario, base_seed, kill_run, run_seed};

/// The base seed of this test process's runs: one for all of them, so that one variable
/// repeats them all.
fn ci_base_seed() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(base_seed)
}

/// Runs CI run `index` of `scenario` and fails on anything it finds.
async fn ci_run(scenario: Scenario, index: u64) {
    crate::support::init_logging();
    let base = ci_base_seed();
    let mode = KillMode::from_env();
    let outcome = kill_run(scenario, run_seed(base, index), &mode).await;
    println!("kill run {index} ({SEED_VAR}={base:#x} repeats it):\n{outcome}");
    outcome.assert_clean();
}

#[test]
fn a_seed_draws_one_plan_inside_its_window_and_a_series_reaches_every_window() {
    // (Imported here, not above: the bench builds this file with cfg(test) but without the test
    // harness, which leaves #[test] functions out, and would find these imports unused.)
    use std::collections::BTreeSet;

    use super::{MAX_DOWNTIME_MS, Plan, parse_seed};

    for scenario in Scenario::ALL {
        let mut reached = BTreeSet::new();
        for index in 0..200 {
            let seed = run_seed(0x6b696c6c, index);
            let plan = Plan::draw(scenario, seed);
            let again = Plan::draw(scenario, seed);
            assert_eq!(
                (plan.window.name, plan.delay_ms, plan.downtime_ms),
                (again.window.name, again.delay_ms, again.downtime_ms),
                "{scenario} seed {seed:#x} draws one plan"
            );
            let window = plan.window;
            assert!(
                (window.from_ms..=window.from_ms + window.span_ms).contains(&plan.delay_ms)
                    && plan.downtime_ms <= MAX_DOWNTIME_MS,
                "{plan}"
            );
            reached.insert(window.name);
        }
        assert_eq!(
            reached.len(),
            scenario.windows().len(),
            "{scenario}: 200 runs reach every window, not only {reached:?}"
        );
    }
    assert_ne!(run_seed(1, 0), run_seed(1, 1), "runs of a series differ");
    assert_eq!(parse_seed("0x1F"), Some(31));
    assert_eq!(parse_seed(" 31 "), Some(31));
    assert_eq!(parse_seed("thirty-one"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_while_creating_a_vm_makes_one_vm_that_becomes_ready_and_is_destroyed_with_its_request()
 {
    ci_run(Scenario::Create, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_while_cloning_a_template_makes_one_clone_that_becomes_ready_and_is_destroyed_with_its_request()
 {
    ci_run(Scenario::Clone, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_while_correcting_drift_applies_the_whole_spec_with_no_second_vm() {
    ci_run(Scenario::Drift, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_while_deleting_a_vm_destroys_it_and_releases_the_finalizer() {
    ci_run(Scenario::Delete, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_while_deleting_a_vm_still_being_created_destroys_it_once_it_exists_and_releases_the_finalizer()
 {
    ci_run(Scenario::DeleteWhileCreating, 4).await;
}
