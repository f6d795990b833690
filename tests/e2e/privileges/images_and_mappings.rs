//! Least privilege for images and passthrough, on both Proxmox VE versions: the commands
//! `pve-operator privileges` prints for the examples that download an image (a cloud image to
//! import, an ISO to boot) and pass devices through by mapping, run verbatim through pve-sim's
//! `pveum`, give a token that passes preflight and runs those examples to Ready; without any one
//! of the privileges they add to the other examples', preflight names exactly it and the
//! ProxmoxImage or MachineRequest that needs it stops, naming it, before anything is made.
//!
//! The image URLs are served on loopback with stand-in files (as `pve-operator demo` does), and
//! the simulator has the demo's mappings and `import` content on `local`.

use std::path::PathBuf;

use futures::StreamExt;
use kube::{Api, ResourceExt};
use pve_client::PveRelease;
use pve_operator::cli::examples::{Examples, read_example};
use pve_operator::cli::image_server::{ImageServer, serve_stand_ins};
use pve_operator::privileges::{Need, VmScope, needs_of_requests, needs_with_images};
use pve_operator_api::{ImageState, MachineRequest, ProxmoxImage};
use pve_sim::{PveVersion, RunningSim, SimOptions};

use super::{
    PVE8, PVE9, all_needs, assert_names_exactly_the_removed, denied, pairs, preflight_without_each,
    printed_commands, printed_token, run_preflight, token_for, vmids, wait_for,
};
use crate::support::{Harness, WithConditions, apply_forced};

/// The examples with images or passthrough devices.
const EXAMPLES: [&str; 3] = [
    "cloud-image-vm.yaml",
    "iso-from-url-vm.yaml",
    "gpu-passthrough-vm.yaml",
];

/// The examples, their image URLs pointed at stand-in files served on loopback, and written to
/// a file of their own for `privileges` and `preflight`.
struct Served {
    examples: Examples,
    file: PathBuf,
    _server: Option<ImageServer>,
    _dir: tempfile::TempDir,
}

impl Served {
    async fn start() -> Served {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
        let mut examples = Examples::default();
        for file in EXAMPLES {
            let one = read_example(&dir.join(file)).expect("example reads");
            examples.requests.extend(one.requests);
            examples.images.extend(one.images);
        }
        assert_eq!(examples.images.len(), 2, "two examples download an image");
        let (server, _) = serve_stand_ins(&mut examples.images)
            .await
            .expect("stand-in server");
        let tmp = tempfile::tempdir().expect("temp dir");
        let file = tmp.path().join("images-and-mappings.yaml");
        let documents: Vec<String> = examples
            .images
            .iter()
            .map(|i| serde_yaml::to_string(i).expect("image YAML"))
            .chain(
                examples
                    .requests
                    .iter()
                    .map(|r| serde_yaml::to_string(r).expect("request YAML")),
            )
            .collect();
        std::fs::write(&file, documents.join("---\n")).expect("manifests written");
        Served {
            examples,
            file,
            _server: server,
            _dir: tmp,
        }
    }

    fn named_images(&self) -> Vec<(String, pve_operator_api::ProxmoxImageSpec)> {
        self.examples
            .images
            .iter()
            .map(|i| (i.name_any(), i.spec.clone()))
            .collect()
    }

    /// What the examples need on `release`.
    fn needs(&self, release: PveRelease) -> Vec<Need> {
        let specs: Vec<_> = self
            .examples
            .requests
            .iter()
            .map(|r| r.spec.clone())
            .collect();
        needs_with_images(&specs, &self.named_images(), release, &VmScope::AllVms)
    }

    /// The needs of these examples (privilege and path) that the other examples do not have.
    fn added_needs(&self, release: PveRelease) -> Vec<Need> {
        let others = all_needs(release);
        let added: Vec<Need> = self
            .needs(release)
            .into_iter()
            .filter(|n| !others.iter().any(|o| same(o, n)))
            .collect();
        assert!(
            added.iter().any(|n| n.privilege == "Mapping.Use")
                && added.iter().any(|n| n.privilege == "Sys.AccessNetwork")
                && added
                    .iter()
                    .any(|n| n.privilege == "Datastore.AllocateTemplate"),
            "the mappings and the downloads add privileges: {added:#?}"
        );
        added
    }

    /// The images (to download) and the requests (to create their VM) that need `need` on
    /// `release`.
    fn needing(&self, need: &Need, release: PveRelease) -> (Vec<String>, Vec<String>) {
        let named = self.named_images();
        let images = named
            .iter()
            .filter(|image| {
                needs_with_images(&[], std::slice::from_ref(image), release, &VmScope::AllVms)
                    .iter()
                    .any(|n| same(n, need))
            })
            .map(|(name, _)| name.clone())
            .collect();
        let requests = self
            .examples
            .requests
            .iter()
            .filter(|r| {
                needs_of_requests(std::slice::from_ref(&r.spec), &named, release)
                    .iter()
                    .any(|n| same(n, need))
            })
            .map(|r| r.name_any())
            .collect();
        (images, requests)
    }

    /// Applies every image, then the requests named in `requests` (all when `None`).
    async fn apply(&self, h: &Harness, requests: Option<&[String]>) {
        let images: Api<ProxmoxImage> = Api::namespaced(h.client.clone(), &h.namespace);
        for image in &self.examples.images {
            let name = image.name_any();
            apply_forced(&images, "e2e-tests", &name, &fresh(image)).await;
        }
        for request in &self.examples.requests {
            let name = request.name_any();
            if requests.is_none_or(|wanted| wanted.contains(&name)) {
                apply_forced(&h.requests(), "e2e-tests", &name, &fresh(request)).await;
            }
        }
    }
}

/// The same privilege on the same path (whatever it is needed for).
fn same(a: &Need, b: &Need) -> bool {
    a.privilege == b.privilege && a.path == b.path
}

/// `object` as a manifest: kind, name and spec only.
fn fresh<K: serde::Serialize + ResourceExt>(object: &K) -> serde_json::Value {
    let mut value = serde_json::to_value(object).expect("serialises");
    value["metadata"] = serde_json::json!({ "name": object.name_any() });
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    value
}

/// The demo's simulator (its mappings, `import` on `local`) as Proxmox VE `version`.
fn demo_cluster(version: PveVersion) -> impl FnOnce(&mut SimOptions) {
    move |options| {
        let demo = pve_operator::cli::demo::demo_sim_options();
        options.config.mappings = demo.config.mappings;
        options.config.storages = demo.config.storages;
        options.config.pve_version = version;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_pve9_the_printed_commands_for_images_and_mappings_pass_preflight_and_run_the_examples()
{
    image_and_mapping_commands_suffice(PVE9, "9").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_pve8_4_the_printed_commands_for_images_and_mappings_pass_preflight_and_run_the_examples()
 {
    image_and_mapping_commands_suffice(PVE8, "8.4").await;
}

/// The printed commands on a simulator of `version`: preflight passes with exactly the needs
/// and no warning; the images download, the cloud image is imported and grown, the ISO boots,
/// the devices reach the VM by mapping; every request is Ready and is deleted.
async fn image_and_mapping_commands_suffice(
    (version, release): (PveVersion, PveRelease),
    flag: &str,
) {
    let served = Served::start().await;
    let commands = printed_commands(vec![served.file.clone()], flag, release);
    assert!(
        !commands.contains("Sys.Modify") && !commands.contains("Datastore.Allocate,"),
        "no download alternative on /, no removal right under Keep: {commands}"
    );
    let prefix = format!("least-privilege-images-{}", version.major());
    let h = Harness::start_with_sim_and_config(
        &prefix,
        demo_cluster(version),
        async |sim: &RunningSim| printed_token(sim, &commands).await,
    )
    .await;

    let config = std::fs::read_to_string(&h.config_path).expect("controller config");
    let outcome = run_preflight(&config, std::slice::from_ref(&served.file)).await;
    assert_eq!(
        outcome.exit_code(),
        0,
        "preflight passes: {:?}",
        outcome.report.missing
    );
    assert_eq!(
        pairs(&outcome.report.present),
        pairs(&served.needs(release))
    );
    assert!(
        outcome.report.warnings.is_empty(),
        "nothing dangerous, no risky setting: {:?}",
        outcome.report.warnings
    );

    let before = vmids(&h).await;
    served.apply(&h, None).await;
    let images: Api<ProxmoxImage> = Api::namespaced(h.client.clone(), &h.namespace);
    let mut volumes = Vec::new();
    for image in &served.examples.images {
        let name = image.name_any();
        let image = crate::support::wait_for(&images, &name, "the image to be present", |i| {
            i.status
                .iter()
                .flat_map(|s| s.nodes.iter())
                .any(|n| n.node == "pve" && n.state == ImageState::Present)
        })
        .await;
        volumes.push(image.status.and_then(|s| s.volume).expect("a volume"));
    }
    for request in &served.examples.requests {
        let name = request.name_any();
        let ready = h.wait_ready(&name).await;
        let vmid = ready.status.and_then(|s| s.vmid).expect("vmid");
        let config = h.vm_config(vmid).await.expect("VM config");
        let has = |key: &str, part: &str| config.get(key).is_some_and(|v| v.contains(part));
        match name.as_str() {
            "cloud-image-vm" => assert!(has("scsi0", "size=16G"), "imported and grown"),
            "iso-from-url-vm" => assert!(
                volumes.iter().any(|v| has("ide2", v)),
                "boots the downloaded ISO: {:?}",
                config.get("ide2")
            ),
            "gpu-passthrough-vm" => {
                assert!(
                    has("hostpci0", "mapping=gpu_a4000"),
                    "{:?}",
                    config.get("hostpci0")
                );
                assert!(has("usb0", "mapping=yubikey"), "{:?}", config.get("usb0"));
            }
            other => panic!("an example request not checked here: {other}"),
        }
    }
    for request in &served.examples.requests {
        h.delete_and_wait_gone(&request.name_any()).await;
    }
    assert_eq!(vmids(&h).await, before, "every example VM is destroyed");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_both_versions_without_any_one_image_or_mapping_privilege_preflight_names_exactly_it() {
    let served = Served::start().await;
    for (version, release) in [PVE9, PVE8] {
        let needs = served.needs(release);
        let added = served.added_needs(release);
        let files = [served.file.clone()];
        let results = preflight_without_each((version, release), &needs, &added, &files).await;
        assert_names_exactly_the_removed(&results, needs.len());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_pve9_without_any_one_image_or_mapping_privilege_what_needs_it_stops_naming_it() {
    let served = Served::start().await;
    let (version, release) = PVE9;
    let needs = served.needs(release);
    let added = served.added_needs(release);
    let checked: Vec<Need> = futures::stream::iter(added.iter().enumerate())
        .map(|(i, removed)| {
            let (needs, served) = (&needs, &served);
            async move {
                let reduced: Vec<Need> = needs.iter().filter(|n| *n != removed).cloned().collect();
                let h = Harness::start_with_sim_and_config(
                    &format!("no-image-priv-{i}"),
                    demo_cluster(version),
                    async |sim: &RunningSim| token_for(sim, &reduced).await,
                )
                .await;
                let (images, requests) = served.needing(removed, release);
                assert!(
                    !images.is_empty() || !requests.is_empty(),
                    "something needs {removed}"
                );
                let before = vmids(&h).await;
                served.apply(&h, Some(&requests)).await;
                let wanted = format!("{} on {} (for", removed.privilege, removed.path);
                let image_api: Api<ProxmoxImage> = Api::namespaced(h.client.clone(), &h.namespace);
                for name in &images {
                    let what = format!("{name} to lack {wanted}");
                    let image = crate::support::wait_for(&image_api, name, &what, |i| {
                        i.condition_now("Ready")
                            .is_some_and(|c| c.reason == "MissingPrivilege")
                    })
                    .await;
                    let message = image.message_of("Ready");
                    assert!(message.contains(&wanted), "{name}: {message}");
                    assert!(
                        image
                            .status
                            .iter()
                            .flat_map(|s| s.nodes.iter())
                            .all(|n| n.state != ImageState::Present && n.upid.is_none()),
                        "{name}: nothing downloaded"
                    );
                }
                for name in &requests {
                    let request = stopped(&h, name, &images, &wanted).await;
                    if let Some(message) = denied(&request) {
                        assert!(message.contains(&wanted), "{name}: {message}");
                    }
                    assert!(
                        request.status.and_then(|s| s.vmid).is_none(),
                        "{name}: no VMID"
                    );
                }
                assert_eq!(vmids(&h).await, before, "nothing was created");
                h.stop().await;
                removed.clone()
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    assert_eq!(checked.len(), added.len());
}

/// Waits until request `name` is denied or waits on one of `blocked`; on a timeout, fails
/// with the conditions it has.
async fn stopped(h: &Harness, name: &str, blocked: &[String], wanted: &str) -> MachineRequest {
    let what = format!("{name} to stop for want of {wanted}");
    let wait = wait_for(h, name, &what, |r| {
        denied(r).is_some() || waits_on_blocked_image(r, blocked)
    });
    match tokio::time::timeout(std::time::Duration::from_secs(50), wait).await {
        Ok(request) => request,
        Err(_) => {
            let now = h.requests().get(name).await.expect("request");
            panic!("timed out waiting for {what}: {:#?}", now.conditions_now())
        }
    }
}

/// Whether `request` waits (ImagePending) on one of `blocked`.
fn waits_on_blocked_image(request: &MachineRequest, blocked: &[String]) -> bool {
    request.condition_now("Ready").is_some_and(|c| {
        c.reason == "ImagePending"
            && blocked
                .iter()
                .any(|image| c.message.contains(image.as_str()))
    })
}
