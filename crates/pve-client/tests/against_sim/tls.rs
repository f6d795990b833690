//! TLS trust: a pinned fingerprint, the simulator's CA as bundle and `insecureSkipVerify` are
//! accepted; a different fingerprint, the public roots and an unrelated CA are refused before any
//! request is sent.

use pve_client::{ClientOptions, ErrorKind, RetryPolicy};

use crate::support::{Harness, ROOT_PW, Trust, expect_err, fast_options};

#[tokio::test]
async fn pinned_fingerprint_and_ca_bundle_are_trusted_and_anything_else_is_refused() {
    let h = Harness::start().await;
    let creds = format!("  username: root@pam\n  password: \"{ROOT_PW}\"\n");
    let pinned = h.client_yaml(
        &creds,
        Trust::Fingerprint(h.sim.fingerprint()),
        fast_options(),
    );
    pinned.version().await.expect("pinned fingerprint");
    let bundle = h.client_yaml(&creds, Trust::CaBundle(h.sim.ca_pem()), fast_options());
    bundle.version().await.expect("the sim's CA as bundle");
    let insecure = h.client_yaml(&creds, Trust::Insecure, fast_options());
    insecure.version().await.expect("insecureSkipVerify");

    let no_retry = ClientOptions {
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    };
    let wrong_fp = vec!["AB"; 32].join(":");
    let wrong = h.client_yaml(&creds, Trust::Fingerprint(&wrong_fp), no_retry.clone());
    let e = expect_err(wrong.version().await, "a different pinned fingerprint");
    assert_eq!(e.kind(), ErrorKind::Certificate, "{e:?}");
    assert!(
        !e.is_retryable(),
        "a refused certificate is not retried: {e}"
    );
    assert!(e.to_string().contains("fingerprint"), "says why: {e}");
    assert!(
        e.to_string()
            .to_uppercase()
            .contains(&h.sim.fingerprint().to_uppercase()),
        "names the fingerprint the server presented: {e}"
    );

    let public = h.client_yaml(&creds, Trust::PublicRoots, no_retry.clone());
    let e = expect_err(public.version().await, "a self-signed CA with public roots");
    assert_eq!(e.kind(), ErrorKind::Certificate, "{e:?}");
    assert!(
        e.to_string().contains("not signed by a trusted CA"),
        "says why in words: {e}"
    );
    assert!(
        !e.is_retryable(),
        "a refused certificate is not retried: {e}"
    );
    assert!(
        e.to_string().to_lowercase().contains("certificate"),
        "says why: {e}"
    );

    let other_ca = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("another certificate")
        .cert
        .pem();
    let stranger = h.client_yaml(&creds, Trust::CaBundle(&other_ca), no_retry);
    let e = expect_err(stranger.version().await, "an unrelated CA bundle");
    assert_eq!(e.kind(), ErrorKind::Certificate, "{e:?}");
    assert!(
        !e.is_retryable(),
        "a refused certificate is not retried: {e}"
    );
    assert_eq!(
        h.requests_to("POST /access/ticket").await,
        3,
        "no request (not even the password) reached the server over an untrusted connection"
    );
}
