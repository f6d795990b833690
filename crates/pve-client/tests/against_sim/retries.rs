//! Transport failures: dropped connections and slow answers are retried for reads and never for
//! writes.

use std::time::Duration;

use pve_client::{ClientOptions, ErrorKind, RetryPolicy};
use serde_json::json;

use crate::support::{Harness, ROOT_PW, expect_create_err, expect_err};

#[tokio::test]
async fn dropped_connections_and_slow_answers_retry_reads_but_never_writes() {
    let h = Harness::start().await;
    let root = h.root();
    root.version().await.expect("login");
    h.faults(json!([
        {"method": "GET", "path": "/nodes", "max_count": 1, "fault": {"kind": "drop"}},
        {"method": "POST", "path": "/nodes/{node}/qemu", "max_count": 1, "fault": {"kind": "drop"}},
        {"method": "GET", "path": "/cluster/nextid", "fault": {"kind": "latency", "ms": 5000}}
    ]))
    .await;
    h.reset_stats().await;
    root.nodes()
        .await
        .expect("GET /nodes after one dropped connection");
    h.expect_requests("GET /nodes", 2, "one retry").await;

    let e = expect_create_err(&root, 100, "dropped", "create on a dropped connection").await;
    assert_eq!(e.kind(), ErrorKind::Transport, "{e:?}");
    assert!(e.is_retryable());
    h.expect_requests(
        "POST /nodes/{node}/qemu",
        1,
        "a write whose answer was lost is not resent blindly",
    )
    .await;

    let impatient = h.password_client(
        "root@pam",
        ROOT_PW,
        ClientOptions {
            timeout: Duration::from_millis(400),
            retry: RetryPolicy {
                max_attempts: 2,
                initial_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(5),
            },
            ..ClientOptions::default()
        },
    );
    // Log in and open the connection first, so that only the slow answer can time out.
    impatient.version().await.expect("login");
    let e = expect_err(impatient.next_vmid().await, "a slow nextid");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e:?}");
    assert!(e.is_retryable());
    h.expect_requests("GET /cluster/nextid", 2, "retried once")
        .await;
}
