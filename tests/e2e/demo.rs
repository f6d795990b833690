//! The README's main command, `pve-operator demo`, works: it brings everything up, every example
//! becomes Ready, and it stops everything it started.

use pve_operator::cli::demo::{DemoArgs, run};

#[tokio::test]
async fn the_demo_brings_every_example_to_ready_and_cleans_up() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let args = DemoArgs {
        examples,
        exit_when_ready: true,
        timeout: 120,
        external_controller: false,
    };
    run(args)
        .await
        .expect("the demo reaches Ready for every example and exits cleanly");
}
