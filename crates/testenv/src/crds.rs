//! Installing CustomResourceDefinitions into a control plane and waiting until each serves: the
//! one way the e2e tests, the binary test and the demo install theirs.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, ResourceExt};

use crate::Error;

/// How long a CRD may take to become Established (a few hundred ms on a local control plane).
const ESTABLISHED_WITHIN: Duration = Duration::from_secs(30);

/// The CRDs in the YAML files of `dir` (one per file, e.g. the repository's `crds/`), by file
/// name.
pub fn read_crd_dir(dir: &Path) -> Result<Vec<CustomResourceDefinition>, Error> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"));
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)?;
            serde_yaml::from_str(&text)
                .map_err(|e| Error::Crd(format!("{} is not a CRD: {e}", path.display())))
        })
        .collect()
}

/// The repository's committed CRDs (`crds/`, the files users apply).
pub fn committed_crds_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds")
}

/// Applies the committed CRDs ([`committed_crds_dir`]) as `field_manager` and waits until each
/// is Established; panics naming the directory when they do not install (test set-up).
pub async fn install_committed_crds(client: &Client, field_manager: &str) {
    let dir = committed_crds_dir();
    let crds = read_crd_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    apply_crds(client, &crds, field_manager)
        .await
        .unwrap_or_else(|e| panic!("installing the CRDs of {}: {e}", dir.display()));
}

/// Applies `crds` (server-side, as `field_manager`) and waits until each is Established.
pub async fn apply_crds(
    client: &Client,
    crds: &[CustomResourceDefinition],
    field_manager: &str,
) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(crd),
        )
        .await?;
        tokio::time::timeout(
            ESTABLISHED_WITHIN,
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .map_err(|_| {
            Error::Crd(format!(
                "CRD {name} did not become Established within {}s",
                ESTABLISHED_WITHIN.as_secs()
            ))
        })?
        .map_err(|e| Error::Crd(format!("watching CRD {name}: {e}")))?;
    }
    Ok(())
}
