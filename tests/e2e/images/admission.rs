//! Admission of ProxmoxImages and of the requests' image references, on the real API server.

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::crds::Verdicts;
use crate::support::shared_namespace;

fn valid_image() -> Value {
    json!({
        "url": "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2",
        "checksum": { "algorithm": "sha512", "value": "ab".repeat(64) },
        "content": "import",
        "storage": "local",
    })
}

async fn api(prefix: &str, kind: &str) -> Api<DynamicObject> {
    let (_, client, ns) = shared_namespace(prefix).await;
    let resource =
        ApiResource::from_gvk(&GroupVersionKind::gvk("pve-operator.dev", "v1alpha1", kind));
    Api::namespaced_with(client, &ns, &resource)
}

fn object(kind: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "pve-operator.dev/v1alpha1",
        "kind": kind,
        "metadata": { "name": name },
        "spec": spec,
    }))
    .expect("object JSON")
}

fn api_error(e: kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} {}", status.code, status.message),
        other => format!("not an API error: {other}"),
    }
}

async fn create(
    api: &Api<DynamicObject>,
    kind: &str,
    name: &str,
    spec: Value,
) -> Result<(), String> {
    api.create(&PostParams::default(), &object(kind, name, spec))
        .await
        .map(drop)
        .map_err(api_error)
}

fn with(mut spec: Value, key: &str, value: Value) -> Value {
    spec[key] = value;
    spec
}

#[tokio::test]
async fn admission_checks_an_images_url_checksum_content_and_format() {
    let images = api("crd-images", "ProxmoxImage").await;
    let mut v = Verdicts::default();
    v.accepted(
        "a valid import image",
        create(&images, "ProxmoxImage", "ok", valid_image()).await,
    );
    let iso = json!({
        "url": "http://127.0.0.1:8080/isos/talos.iso?arch=amd64",
        "checksum": { "algorithm": "sha256", "value": "0".repeat(64) },
        "content": "iso",
        "storage": "local",
        "nodes": ["pve1"],
        "deletionPolicy": "Delete",
    });
    v.accepted(
        "a valid iso image",
        create(&images, "ProxmoxImage", "iso", iso.clone()).await,
    );
    let bad: Vec<(&str, Value, &[&str])> = vec![
        (
            "credentials in the URL",
            with(
                valid_image(),
                "url",
                json!("https://user:pw@x.example/a.qcow2"),
            ),
            &["no credentials"],
        ),
        (
            "not http",
            with(valid_image(), "url", json!("ftp://x.example/a.qcow2")),
            &["http:// or https://"],
        ),
        (
            "no path",
            with(valid_image(), "url", json!("https://x.example")),
            &["url"],
        ),
        (
            "spaces",
            with(valid_image(), "url", json!("https://x.example/a b.qcow2")),
            &["url"],
        ),
        (
            "short digest",
            with(
                valid_image(),
                "checksum",
                json!({ "algorithm": "sha512", "value": "ab".repeat(32) }),
            ),
            &["128 for sha512"],
        ),
        (
            "not hex",
            with(
                valid_image(),
                "checksum",
                json!({ "algorithm": "sha256", "value": "z".repeat(64) }),
            ),
            &["checksum.value"],
        ),
        (
            "unknown algorithm",
            with(
                valid_image(),
                "checksum",
                json!({ "algorithm": "md5", "value": "a".repeat(64) }),
            ),
            &["algorithm"],
        ),
        (
            "unknown content",
            with(valid_image(), "content", json!("vztmpl")),
            &["content"],
        ),
        (
            "import of unknown format",
            with(valid_image(), "url", json!("https://x.example/disk.img")),
            &["needs format"],
        ),
        (
            "format on an iso",
            with(iso.clone(), "format", json!("raw")),
            &["format applies to import images only"],
        ),
        (
            "bad storage",
            with(valid_image(), "storage", json!("Local Disk")),
            &["spec.storage"],
        ),
        (
            "bad policy",
            with(valid_image(), "deletionPolicy", json!("Sometimes")),
            &["deletionPolicy"],
        ),
    ];
    for (i, (case, spec, expected)) in bad.into_iter().enumerate() {
        let answer = create(&images, "ProxmoxImage", &format!("bad-{i}"), spec).await;
        v.refused(case, answer, true, expected);
    }
    // What a file is, is fixed: url, checksum, content, storage.
    for (i, (key, value)) in [
        ("url", json!("https://cloud.debian.org/images/other.qcow2")),
        (
            "checksum",
            json!({ "algorithm": "sha512", "value": "cd".repeat(64) }),
        ),
        ("storage", json!("nfs")),
        ("clusterRef", json!({ "name": "other" })),
    ]
    .into_iter()
    .enumerate()
    {
        let patch = json!({ "spec": { key: value } });
        let answer = images
            .patch("ok", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
            .map_err(api_error);
        v.refused(
            &format!("changing {key} ({i})"),
            answer,
            true,
            &["immutable"],
        );
    }
    v.assert_all_right();
}

#[tokio::test]
async fn admission_takes_an_image_as_one_boot_source_and_keeps_a_disks_image() {
    let requests = api("crd-image-refs", "MachineRequest").await;
    let spec = json!({
        "memory": { "sizeMiB": 512 },
        "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 8, "image": { "name": "debian" } }],
        "boot": { "image": { "name": "installer" } },
    });
    let mut v = Verdicts::default();
    v.accepted(
        "boot and disk images",
        create(&requests, "MachineRequest", "ok", spec.clone()).await,
    );
    let mut two = spec.clone();
    two["boot"]["network"] = json!({});
    v.refused(
        "an image and the network",
        create(&requests, "MachineRequest", "two", two).await,
        true,
        &["exactly one boot source: iso, image, template or network"],
    );
    let mut bad_name = spec.clone();
    bad_name["boot"] = json!({ "image": { "name": "Not A Name" } });
    v.refused(
        "an image name that is not an object name",
        create(&requests, "MachineRequest", "bad-name", bad_name).await,
        true,
        &["spec.boot.image.name"],
    );
    let patch = json!({ "spec": { "disks": [{ "slot": "scsi0", "storage": "local-lvm", "sizeGiB": 8, "image": { "name": "ubuntu" } }] } });
    let answer = requests
        .patch("ok", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
        .map_err(api_error);
    v.refused(
        "changing a disk's image",
        answer,
        true,
        &["a disk's image is immutable"],
    );
    v.assert_all_right();
}
