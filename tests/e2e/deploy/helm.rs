//! The Helm chart as helm takes it: `helm lint --strict` with the defaults and with every
//! option on, the values it refuses (naming the value and what is wrong), the chart's and the
//! kustomize base's copies of `crds/`, and `helm install` as the README says, then `helm
//! uninstall`.

use std::process::{Command, Stdio};

use kube::Api;
use serde_json::Value;

use super::{CHART, files, repo, run_tool, tools};
use crate::support::{init_logging, shared_namespace};

#[test]
fn helm_lint_passes_with_the_defaults_and_with_every_option_on() {
    let out = run_tool("helm", &["lint", "--strict", CHART]);
    assert!(out.contains("0 chart(s) failed"), "{out}");
    let out = run_tool(
        "helm",
        &[
            "lint",
            "--strict",
            CHART,
            "--set",
            "watchNamespace=team-a",
            "--set",
            "replicaCount=2",
            "--set",
            "proxmox.config.url=https://pve.example:8006/api2/json",
            "--set",
            "proxmox.config.tokenID=omni@pve!omni-provider",
            "--set",
            "proxmox.config.tokenSecret=not-a-real-secret",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "networkPolicy.enabled=true",
        ],
    );
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

/// `helm template` with `sets` that the chart must refuse: the error (stderr).
fn helm_template_refused(sets: &[&str]) -> String {
    let mut args = vec!["template", "pve-operator", CHART, "--namespace", "ops"];
    for set in sets {
        args.extend(["--set", set]);
    }
    let output = Command::new(tools().join("helm"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("helm runs");
    assert!(
        !output.status.success(),
        "helm accepted {sets:?}:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_chart_refuses_bad_values_naming_the_value_and_what_is_wrong() {
    // (values, words the error must contain)
    let cases: &[(&[&str], &[&str])] = &[
        // values.schema.json: a misspelt key is not silently ignored.
        (
            &["leaderElection.leaseDuraton=30"],
            &["leaderElection", "leaseDuraton", "not allowed"],
        ),
        (&["replicaCount=two"], &["replicaCount", "integer"]),
        (&["logging.format=yaml"], &["logging/format"]),
        // identitySecrets: Secret names (DNS subdomains), each once.
        (
            &["identitySecrets={Bad_Name}"],
            &["identitySecrets/0", "Bad_Name", "does not match pattern"],
        ),
        (
            &["identitySecrets={ok,team/secret}"],
            &["identitySecrets/1", "team/secret", "does not match pattern"],
        ),
        // (`--set 'identitySecrets={}'` is a list of one empty name.)
        (
            &["identitySecrets={}"],
            &["identitySecrets/0", "does not match pattern"],
        ),
        (
            &["identitySecrets={pve-admin,pve-admin}"],
            &["identitySecrets", "are equal"],
        ),
        // proxmox.allowedNamespaces: namespace names or "*".
        (
            &["proxmox.allowedNamespaces={Team_A}"],
            &["proxmox/allowedNamespaces/0", "Team_A", "value must be '*'"],
        ),
        // Rules across values, from the templates.
        (
            &["leaderElection.renewInterval=10"],
            &["renewInterval (10s)", "leaseDuration (15s)"],
        ),
        (
            &["proxmox.allowedNamespaces={team-a,*}"],
            &[
                "proxmox.allowedNamespaces",
                "\"*\" already means every namespace",
                "give it alone",
            ],
        ),
        (
            &[
                "watchNamespace=team-a",
                "proxmox.allowedNamespaces={team-b}",
            ],
            &[
                "proxmox.allowedNamespaces [\"team-b\"]",
                "watchNamespace \"team-a\"",
                "leave proxmox.allowedNamespaces empty",
            ],
        ),
        (
            &[
                "watchNamespace=team-a",
                "proxmox.allowedNamespaces={team-a,team-b}",
            ],
            &[
                "proxmox.allowedNamespaces",
                "team-b",
                "leave proxmox.allowedNamespaces empty",
            ],
        ),
        (
            &["watchNamespace=team-a", "proxmox.allowedNamespaces={*}"],
            &[
                "proxmox.allowedNamespaces [\"*\"]",
                "watchNamespace \"team-a\"",
            ],
        ),
    ];
    for (sets, words) in cases {
        let error = helm_template_refused(sets);
        for word in *words {
            assert!(error.contains(word), "{sets:?}: {word:?} not in {error}");
        }
    }
}

#[test]
fn the_chart_and_the_kustomize_base_carry_exactly_the_committed_crds() {
    let committed = files(&repo("../crds"));
    assert!(!committed.is_empty());
    for copy in [
        "../deploy/helm/pve-operator/crds",
        "../deploy/kustomize/crds",
    ] {
        let copied = files(&repo(copy));
        assert_eq!(
            copied.keys().collect::<Vec<_>>(),
            committed.keys().collect::<Vec<_>>(),
            "{copy} holds other files than crds/; copy crds/*.yaml there"
        );
        for (name, text) in &committed {
            assert!(
                copied[name] == *text,
                "{copy}/{name} differs from crds/{name}; copy crds/*.yaml there (cp crds/*.yaml {})",
                copy.trim_start_matches("../")
            );
        }
    }
}

#[tokio::test]
async fn helm_install_as_the_readme_says_creates_the_release_and_uninstall_removes_it() {
    use k8s_openapi::api::apps::v1::Deployment;
    init_logging();
    let (env, client, ns) = shared_namespace("helm-install").await;
    let kubeconfig = env.kubeconfig_path().to_string_lossy().into_owned();
    let watch = format!("watchNamespace={ns}");
    // The README's command (the Secret is created beforehand; here a namespace scope keeps the
    // release out of other tests' way).
    let helm = |args: &[&str]| {
        let mut all = vec![
            "--kubeconfig",
            kubeconfig.as_str(),
            "--namespace",
            ns.as_str(),
        ];
        all.extend_from_slice(args);
        run_tool("helm", &all)
    };
    helm(&[
        "install",
        "pve-operator",
        CHART,
        "--set",
        "image.repository=registry.example/pve-operator",
        "--set",
        "proxmox.existingSecret=pve-operator-proxmox",
        "--set",
        &watch,
    ]);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment = deployments
        .get("pve-operator")
        .await
        .expect("the release's Deployment exists");
    let pod = deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod spec");
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("registry.example/pve-operator:0.1.0")
    );
    assert_eq!(
        pod.volumes.unwrap_or_default()[0]
            .secret
            .as_ref()
            .and_then(|s| s.secret_name.as_deref()),
        Some("pve-operator-proxmox")
    );
    let status = helm(&["status", "pve-operator", "-o", "json"]);
    let status: Value = serde_json::from_str(&status).expect("helm status JSON");
    assert_eq!(status["info"]["status"], "deployed", "{}", status["info"]);

    helm(&["uninstall", "pve-operator", "--wait"]);
    assert!(
        deployments
            .get_opt("pve-operator")
            .await
            .expect("readable")
            .is_none(),
        "uninstall removes the Deployment"
    );
}
