//! Helpers shared by the e2e tests.

use std::future::Future;
use std::time::Duration;

/// Awaits `condition` with a deadline, so that a broken behaviour fails the test instead of
/// hanging it. The deadline is a safety net, not a timing assertion.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(60), future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after 60s waiting for {what}"),
    }
}

/// Polls `check` every 20 ms until it holds, failing after 30 s with `what`.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    within(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Sends the tests' logs to the test output when `TEST_LOG` is set (e.g. `TEST_LOG=debug`), and
/// counts Proxmox requests into the controller's metrics as `pve-operator run` does.
pub fn init_logging() {
    use pve_operator::ops::metrics::ProxmoxRequestLayer;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let logs = std::env::var("TEST_LOG").ok().map(|filter| {
        tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(tracing_subscriber::EnvFilter::new(filter))
    });
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(ProxmoxRequestLayer.with_filter(ProxmoxRequestLayer::filter()))
        .try_init();
}
