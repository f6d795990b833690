//! The kustomize base: it is what the chart renders (regenerate it with
//! `PVE_OPERATOR_UPDATE_DEPLOY=1 cargo test -p pve-operator-tests deploy::kustomize`), it
//! carries every CRD of `crds/` once, a server-side dry run accepts it, and the overlay for an
//! identity's Secret that its kustomization.yaml shows grants what the chart grants.

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::{
    CHART, KUSTOMIZE, documents, dry_run_apply, files, find, helm_template, kind_and_name, repo,
    run_tool, secret_rules,
};
use crate::crds::install_crds;
use crate::support::init_logging;

/// The `--set` values that render the kustomize base from the chart.
const KUSTOMIZE_SETS: &[&str] = &[
    "managedBy=kustomize",
    "proxmox.existingSecret=pve-operator-proxmox",
];

#[tokio::test]
async fn kustomize_base_is_the_chart_rendered_and_is_accepted_by_a_server_side_dry_run() {
    init_logging();
    // The base's resources are what the chart renders with its defaults.
    let rendered = {
        let mut args = vec![
            "template",
            "pve-operator",
            CHART,
            "--namespace",
            "pve-operator",
        ];
        for set in KUSTOMIZE_SETS {
            args.extend(["--set", set]);
        }
        run_tool("helm", &args)
    };
    let header = "# Generated from deploy/helm/pve-operator: helm template pve-operator deploy/helm/pve-operator \\\n#   --namespace pve-operator --set managedBy=kustomize --set proxmox.existingSecret=pve-operator-proxmox\n# Regenerate: PVE_OPERATOR_UPDATE_DEPLOY=1 cargo test -p pve-operator-tests deploy::kustomize\n";
    let expected = format!("{header}{rendered}");
    let path = repo("../deploy/kustomize/pve-operator.yaml");
    if std::env::var_os("PVE_OPERATOR_UPDATE_DEPLOY").is_some() {
        std::fs::write(&path, &expected).expect("written");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "deploy/kustomize/pve-operator.yaml differs from what the chart renders; regenerate it with \
         PVE_OPERATOR_UPDATE_DEPLOY=1 cargo test -p pve-operator-tests deploy::kustomize"
    );

    let built = run_tool("kustomize", &["build", KUSTOMIZE]);
    let docs = documents(&built);
    let kinds: Vec<String> = docs.iter().map(kind_and_name).collect();
    for kind in [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ] {
        assert!(!find(&docs, kind).is_empty(), "no {kind} in {kinds:?}");
    }
    // Every CRD of crds/, each once (kustomization.yaml lists them one by one).
    let mut committed: Vec<String> = files(&repo("../crds"))
        .values()
        .flat_map(|text| documents(std::str::from_utf8(text).expect("UTF-8")))
        .map(|d| kind_and_name(&d))
        .collect();
    committed.sort();
    let mut built: Vec<String> = find(&docs, "CustomResourceDefinition")
        .into_iter()
        .map(kind_and_name)
        .collect();
    built.sort();
    assert_eq!(
        built, committed,
        "the base's CRDs are not crds/'s; list each file of deploy/kustomize/crds in deploy/kustomize/kustomization.yaml"
    );
    let env = testenv::TestEnv::shared().await.expect("control plane");
    let client = env.client().expect("client");
    install_crds(&client).await;
    // Namespaced objects need their namespace to exist, even in a dry run.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = find(&docs, "Namespace")[0];
    namespaces
        .patch(
            "pve-operator",
            &PatchParams::apply("e2e-deploy").force(),
            &Patch::Apply(namespace),
        )
        .await
        .expect("namespace pve-operator");
    dry_run_apply(&client, &docs).await;

    // The overlay that kustomization.yaml's comment shows for an identity's Secret grants what
    // the chart grants for it, and builds on the base.
    let kustomization =
        std::fs::read_to_string(repo("../deploy/kustomize/kustomization.yaml")).expect("readable");
    let example: String = kustomization
        .lines()
        .skip_while(|l| !l.contains("a RoleBinding to the ServiceAccount:"))
        .skip(2)
        .take_while(|l| *l != "#")
        .map(|l| {
            format!(
                "{}\n",
                l.strip_prefix("#   ").unwrap_or_else(|| panic!("{l:?}"))
            )
        })
        .collect();
    let shown = documents(&example);
    assert_eq!(
        shown.iter().map(kind_and_name).collect::<Vec<_>>(),
        [
            "Role/pve-operator-identity-secrets",
            "RoleBinding/pve-operator-identity-secrets"
        ],
        "the overlay example in kustomization.yaml:\n{example}"
    );
    let mut sets = KUSTOMIZE_SETS.to_vec();
    sets.push("identitySecrets={pve-admin}");
    let chart = documents(&helm_template("pve-operator", &sets));
    for doc in &shown {
        let rendered = chart
            .iter()
            .find(|d| kind_and_name(d) == kind_and_name(doc))
            .unwrap_or_else(|| panic!("the chart renders no {}", kind_and_name(doc)));
        for field in ["rules", "roleRef", "subjects"] {
            assert_eq!(
                doc[field],
                rendered[field],
                "{} {field}: the example differs from the chart's identitySecrets",
                kind_and_name(doc)
            );
        }
        assert_eq!(doc["metadata"]["namespace"], "pve-operator");
    }
    let overlay = tempfile::tempdir().expect("temp dir");
    std::fs::write(overlay.path().join("identity-secrets.yaml"), &example).expect("written");
    // (kustomize takes a base by a relative path only.)
    let dir = overlay.path().canonicalize().expect("temp dir");
    let base = repo(KUSTOMIZE).canonicalize().expect("the base");
    let up = "../".repeat(dir.components().count() - 1);
    let base = format!(
        "{up}{}",
        base.strip_prefix("/").expect("absolute").display()
    );
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!("resources:\n  - {base}\n  - identity-secrets.yaml\n"),
    )
    .expect("written");
    let built = documents(&run_tool(
        "kustomize",
        &["build", &dir.display().to_string()],
    ));
    assert_eq!(
        secret_rules(&built),
        secret_rules(&shown),
        "the overlay adds exactly the example's Secret rule"
    );
    dry_run_apply(&client, &built).await;
}
