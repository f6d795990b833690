//! ProxmoxCluster end to end: its status (version, endpoint, nodes, credentials) and the VMID
//! range it gives its requests; broken credentials and a certificate pin that does not match
//! are reported without secrets, and fixing the identity's Secret resumes at once.

use kube::Api;
use pve_operator_api::{ProxmoxCluster, ProxmoxIdentity};
use serde_json::json;

use super::vmid_of;
use crate::support::{Harness, WithConditions, small_spec, wait_reason, wait_status};

#[tokio::test]
async fn a_proxmox_cluster_reports_version_nodes_and_credentials_and_serves_cluster_refs() {
    let h = Harness::start("cluster").await;
    let clusters: Api<ProxmoxCluster> = Api::namespaced(h.client.clone(), &h.namespace);
    let root_config = |password: &str| h.root_config_with(h.sim.fingerprint(), password);
    let identity = h
        .create_identity(
            "lab",
            &root_config(h.sim.root_password()),
            json!({ "allowedNamespaces": { "list": [h.namespace] } }),
        )
        .await;
    h.create_cluster(
        "lab",
        &identity,
        json!({ "vmidRange": { "min": 5000, "max": 5099 } }),
    )
    .await;
    let ready = wait_status(&clusters, "lab", "Ready", "True").await;
    let status = ready.status.expect("status");
    assert!(
        status
            .version
            .as_deref()
            .is_some_and(|v| v.starts_with("9.1.")),
        "the simulator's default is 9.1; version: {:?}",
        status.version
    );
    let endpoint = status.endpoint.clone().unwrap_or_default();
    assert!(
        endpoint.ends_with("/api2/json")
            && h.sim
                .url()
                .starts_with(endpoint.trim_end_matches("/api2/json")),
        "the identity's endpoint ({endpoint}) is shown, the simulator's ({})",
        h.sim.url()
    );
    assert_eq!(
        status
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.online))
            .collect::<Vec<_>>(),
        [("pve", true)]
    );

    // A request on that cluster gets a VMID from the cluster's range.
    let mut spec = small_spec();
    spec["clusterRef"] = json!({ "name": "lab" });
    h.apply("on-lab", spec).await;
    let vmid = vmid_of(&h.wait_ready("on-lab").await);
    assert!(
        (5000..=5099).contains(&vmid),
        "VMID {vmid} from spec.allowed.vmidRange"
    );

    // Broken credentials are noticed through the Secret's watch, and said so in the identity's
    // status without the secret.
    h.apply_identity_secret(&identity, &root_config("wrong-password"))
        .await;
    let identities: Api<ProxmoxIdentity> = Api::all(h.client.clone());
    let message = wait_status(&identities, &identity, "CredentialsValid", "False")
        .await
        .message_of("CredentialsValid");
    assert!(
        !message.contains("wrong-password"),
        "no secret in status: {message}"
    );
    assert!(
        message.to_lowercase().contains("authentication")
            || message.contains("401")
            || message.contains("refused"),
        "says why: {message}"
    );
    // The tenant's ProxmoxCluster follows its identity.
    wait_status(&clusters, "lab", "CredentialsValid", "False").await;
    h.stop().await;
}

#[tokio::test]
async fn a_refused_certificate_is_named_once_and_fixing_the_pin_resumes_at_once() {
    let h = Harness::start("cert").await;
    let clusters: Api<ProxmoxCluster> = Api::namespaced(h.client.clone(), &h.namespace);
    let config = |fingerprint: &str| h.root_config_with(fingerprint, h.sim.root_password());
    // A pin that is not the simulator's certificate: what a renewed or replaced certificate, or
    // a man in the middle, looks like.
    let wrong_pin = vec!["AB"; 32].join(":");
    let identity = h
        .create_identity(
            "pinned",
            &config(&wrong_pin),
            json!({ "allowedNamespaces": { "list": [h.namespace] } }),
        )
        .await;
    h.create_cluster("pinned", &identity, json!({})).await;
    let mut spec = small_spec();
    spec["clusterRef"] = json!({ "name": "pinned" });
    h.apply("behind-a-wrong-pin", spec).await;

    // The cluster and the request both say what is wrong and what to do.
    let presented = h.sim.fingerprint().to_uppercase();
    let message = wait_reason(&clusters, "pinned", "Ready", "CertificateRejected")
        .await
        .message_of("Ready");
    assert!(
        message.to_uppercase().contains(&presented) && message.contains("fingerprint"),
        "names the certificate the server presented and the setting to change: {message}"
    );
    let message = wait_reason(
        &h.requests(),
        "behind-a-wrong-pin",
        "Ready",
        "CertificateRejected",
    )
    .await
    .message_of("Ready");
    assert!(
        message.to_uppercase().contains(&presented),
        "the request's condition names the presented certificate: {message}"
    );
    assert!(
        !message.contains(h.sim.root_password()),
        "no secret in status: {message}"
    );
    assert_eq!(
        h.sim.stats().requests_total,
        0,
        "nothing, not even the password, went over the unverified connection"
    );

    // Fixing the pin (in the identity's Secret) resumes the request now, not at the slow retry
    // of a permanent error (minutes away): the Secret's watch reconciles the identity, whose
    // change reconciles the ProxmoxCluster, whose change reconciles the request.
    h.apply_identity_secret(&identity, &config(h.sim.fingerprint()))
        .await;
    h.wait_ready("behind-a-wrong-pin").await;
    h.stop().await;
}
