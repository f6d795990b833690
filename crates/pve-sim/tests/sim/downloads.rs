//! `POST …/storage/{storage}/download-url` and `DELETE …/content/{volume}`: a real fetch from a
//! loopback HTTP server ([`crate::image_server`]), checksums, PVE's task errors and synchronous
//! refusals, the running task while the server stalls, the permission rule (the same in 8.4 and
//! 9.1, checked in both), and deleting the file again.

use pve_sim::RunningSim;
use pve_sim::config::{ClusterConfig, Size, StorageConfig};
use pve_sim::version::PveVersion;
use reqwest::Method;
use serde_json::Value;

use crate::image_server::{ImageServer, closed_port, sha256, sha512};
use crate::support::{Api, USER_CFG, config_of, start_root_with, urlencode};

/// erin: may store templates on `local`, but reach no network; frank: and `Sys.AccessNetwork` on
/// the node; gina: and `Sys.Audit` + `Sys.Modify` on `/`; hank: network, no template right.
const DOWNLOADERS: &str = "\
role:Templater:Datastore.AllocateTemplate,Datastore.Audit:
role:NetProbe:Sys.AccessNetwork:
role:SysModify:Sys.Audit,Sys.Modify:
user:erin@pve:1:0:::::
acl:1:/storage/local:erin@pve:Templater:
user:frank@pve:1:0:::::
acl:1:/storage/local:frank@pve:Templater:
acl:1:/nodes/pve:frank@pve:NetProbe:
user:gina@pve:1:0:::::
acl:1:/storage/local:gina@pve:Templater:
acl:0:/:gina@pve:SysModify:
user:hank@pve:1:0:::::
acl:1:/nodes/pve:hank@pve:NetProbe:
";

pub const IMAGE: &[u8] = b"QFI\xfb a small disk image, not a real one";

/// Two nodes; `local` (per node) also holds imports, `shared` (NFS) holds ISOs and imports on
/// both nodes, `isos` only ISOs.
pub fn download_config(version: PveVersion) -> ClusterConfig {
    let mut cfg = config_of(version);
    cfg.user_cfg = Some(format!("{USER_CFG}{DOWNLOADERS}"));
    let mut second = cfg.nodes[0].clone();
    second.name = "pve2".into();
    cfg.nodes.push(second);
    if let Some(local) = cfg.storages.iter_mut().find(|s| s.id == "local") {
        local.content.push("import".into());
    }
    let storage = |id: &str, ty: &str, content: &[&str], shared: bool| StorageConfig {
        id: id.into(),
        r#type: ty.into(),
        content: content.iter().map(|c| c.to_string()).collect(),
        capacity: Size(100 << 30),
        shared,
        nodes: None,
    };
    cfg.storages
        .push(storage("shared", "nfs", &["iso", "import", "images"], true));
    cfg.storages.push(storage("isos", "dir", &["iso"], false));
    cfg
}

pub async fn start_downloads(version: PveVersion) -> (RunningSim, Api) {
    start_root_with(download_config(version)).await
}

fn download_path(node: &str, storage: &str) -> String {
    format!("/nodes/{node}/storage/{storage}/download-url")
}

/// Runs a download on `pve`; returns the UPID and the task's exit status.
pub async fn download(api: &Api, storage: &str, params: &[(&str, &str)]) -> (String, String) {
    let upid = api
        .upid(Method::POST, &download_path("pve", storage), params)
        .await;
    let status = api.wait_task(&upid).await;
    let exit = status["exitstatus"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (upid, exit)
}

/// The content of `storage` on `node` (`content` filter if given).
pub async fn content(api: &Api, node: &str, storage: &str, filter: Option<&str>) -> Vec<Value> {
    let path = format!("/nodes/{node}/storage/{storage}/content");
    let params: Vec<(&str, &str)> = filter.map(|c| ("content", c)).into_iter().collect();
    let (code, body) = api.call(Method::GET, &path, &params).await;
    assert_eq!(code, 200, "{path}: {body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

fn entry<'a>(list: &'a [Value], volid: &str) -> Option<&'a Value> {
    list.iter().find(|e| e["volid"] == volid)
}

async fn task_log(api: &Api, upid: &str) -> Vec<String> {
    let path = format!("/nodes/pve/tasks/{}/log", urlencode(upid));
    let (_, body) = api.call(Method::GET, &path, &[("limit", "0")]).await;
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["t"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_verified_download_appears_on_its_node_or_on_every_node_of_a_shared_storage() {
    let server = ImageServer::start(&[("disk.qcow2", IMAGE), ("talos.iso", b"an iso image")]).await;
    for version in PveVersion::ALL {
        let (_sim, api) = start_downloads(version).await;
        let sum = sha256(IMAGE);
        let (upid, exit) = download(
            &api,
            "local",
            &[
                ("url", &server.url("disk.qcow2")),
                ("content", "import"),
                ("filename", "disk.qcow2"),
                ("checksum", &sum),
                ("checksum-algorithm", "sha256"),
            ],
        )
        .await;
        assert_eq!(exit, "OK", "{version:?}");
        assert!(upid.contains(":download:disk.qcow2:root@pam:"), "{upid}");
        let log = task_log(&api, &upid).await;
        assert_eq!(
            log.first().map(String::as_str),
            Some(
                format!(
                    "downloading {} to /var/lib/vz/import/disk.qcow2",
                    server.url("disk.qcow2")
                )
                .as_str()
            )
        );
        assert!(
            log.iter()
                .any(|l| l == "calculating checksum...OK, checksum verified"),
            "{log:?}"
        );
        assert_eq!(log.last().map(String::as_str), Some("TASK OK"));
        let imports = content(&api, "pve", "local", Some("import")).await;
        let disk = entry(&imports, "local:import/disk.qcow2").expect("listed");
        assert_eq!(disk["size"], IMAGE.len() as u64);
        assert_eq!(disk["format"], "qcow2");
        assert_eq!(disk["content"], "import");
        assert!(
            entry(
                &content(&api, "pve2", "local", None).await,
                "local:import/disk.qcow2"
            )
            .is_none(),
            "a node-local file is on its node only"
        );

        let sum = sha512(b"an iso image");
        let (_, exit) = download(
            &api,
            "shared",
            &[
                ("url", &server.url("talos.iso")),
                ("content", "iso"),
                ("filename", "talos.iso"),
                ("checksum", &sum.to_uppercase()),
                ("checksum-algorithm", "sha512"),
            ],
        )
        .await;
        assert_eq!(exit, "OK", "{version:?}");
        for node in ["pve", "pve2"] {
            let isos = content(&api, node, "shared", Some("iso")).await;
            let iso = entry(&isos, "shared:iso/talos.iso").expect("on every node");
            assert_eq!(iso["size"], 12);
            assert_eq!(iso["format"], "iso");
        }
    }
}

#[tokio::test]
async fn a_checksum_mismatch_fails_the_task_and_leaves_no_file() {
    let server = ImageServer::start(&[("disk.qcow2", IMAGE)]).await;
    let (_sim, api) = start_downloads(PveVersion::Pve9_1).await;
    let wrong = "0".repeat(64);
    let (upid, exit) = download(
        &api,
        "local",
        &[
            ("url", &server.url("disk.qcow2")),
            ("content", "import"),
            ("filename", "disk.qcow2"),
            ("checksum", &wrong),
            ("checksum-algorithm", "sha256"),
        ],
    )
    .await;
    assert_eq!(
        exit,
        format!(
            "checksum mismatch: got '{}' != expect '{wrong}'",
            sha256(IMAGE)
        )
    );
    let log = task_log(&api, &upid).await;
    assert_eq!(log.last(), Some(&format!("TASK ERROR: {exit}")));
    assert!(
        content(&api, "pve", "local", Some("import"))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn unreachable_hosts_and_http_errors_fail_as_wget_does() {
    let server = ImageServer::start(&[]).await;
    let (_sim, api) = start_downloads(PveVersion::Pve8_4).await;
    let port = closed_port().await;
    let cases = [
        (
            format!("http://127.0.0.1:{port}/disk.qcow2"),
            format!(
                "download failed: Connecting to 127.0.0.1:{port}... failed: Connection refused."
            ),
        ),
        (
            "http://images.example.invalid/disk.qcow2".to_string(),
            "download failed: wget: unable to resolve host address 'images.example.invalid'"
                .to_string(),
        ),
        (
            "http://192.0.2.10:8080/disk.qcow2".to_string(),
            "download failed: Connecting to 192.0.2.10:8080... failed: Network is unreachable."
                .to_string(),
        ),
        (
            server.url("missing.qcow2"),
            "download failed: exit code 8".to_string(),
        ),
    ];
    for (url, expected) in cases {
        let (upid, exit) = download(
            &api,
            "local",
            &[
                ("url", &url),
                ("content", "import"),
                ("filename", "disk.qcow2"),
            ],
        )
        .await;
        assert_eq!(exit, expected, "{url}");
        if url.contains("missing") {
            let log = task_log(&api, &upid).await;
            assert!(
                log.iter()
                    .any(|l| l == "HTTP request sent, awaiting response... 404 Not Found"),
                "{log:?}"
            );
        }
    }
    assert!(
        content(&api, "pve", "local", Some("import"))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn storages_that_cannot_hold_the_file_and_bad_names_are_refused_at_once() {
    let (_sim, api) = start_downloads(PveVersion::Pve9_1).await;
    let url = "http://127.0.0.1:9/disk.qcow2";
    let path = |s: &str| download_path("pve", s);
    let import = |name: &'static str| [("url", url), ("content", "import"), ("filename", name)];
    api.expect_message(
        Method::POST,
        &path("local-lvm"),
        &import("disk.qcow2"),
        (
            500,
            "can't upload to storage type 'lvmthin', not a file based storage!\n",
        ),
    )
    .await;
    api.expect_message(
        Method::POST,
        &path("isos"),
        &import("disk.qcow2"),
        (
            500,
            "storage 'isos' is not configured for content-type 'import'\n",
        ),
    )
    .await;
    api.expect_message(
        Method::POST,
        &path("nowhere"),
        &import("disk.qcow2"),
        (500, "storage 'nowhere' does not exist\n"),
    )
    .await;
    api.expect_param_error(
        Method::POST,
        &path("local"),
        &import("disk.iso"),
        ("filename", "invalid filename or wrong extension"),
    )
    .await;
    api.expect_param_error(
        Method::POST,
        &path("local"),
        &[("url", url), ("content", "iso"), ("filename", "disk.qcow2")],
        ("filename", "wrong file extension"),
    )
    .await;
    api.expect_param_error(
        Method::POST,
        &path("local"),
        &[("url", url), ("content", "images"), ("filename", "d.raw")],
        (
            "content",
            "value 'images' does not have a value in the enumeration 'iso, vztmpl, import'",
        ),
    )
    .await;
    api.expect_param_error(
        Method::POST,
        &path("local"),
        &[
            ("url", "ftp://x/d.raw"),
            ("content", "import"),
            ("filename", "d.raw"),
        ],
        ("url", "value does not match the regex pattern"),
    )
    .await;
    // The name is normalised: the task and the volume carry the normalised name.
    let upid = api
        .upid(
            Method::POST,
            &path("local"),
            &[
                ("url", url),
                ("content", "import"),
                ("filename", "../my disk.raw"),
            ],
        )
        .await;
    assert!(upid.contains(":download:my_disk.raw:"), "{upid}");
    api.wait_task(&upid).await;
}

#[tokio::test]
async fn an_existing_file_is_kept_unless_its_checksum_is_the_one_asked_for() {
    let server = ImageServer::start(&[("disk.qcow2", IMAGE)]).await;
    let (_sim, api) = start_downloads(PveVersion::Pve9_1).await;
    let url = server.url("disk.qcow2");
    let plain = [
        ("url", url.as_str()),
        ("content", "import"),
        ("filename", "disk.qcow2"),
    ];
    assert_eq!(download(&api, "local", &plain).await.1, "OK");
    assert_eq!(
        download(&api, "local", &plain).await.1,
        "refusing to override existing file '/var/lib/vz/import/disk.qcow2'"
    );
    let sum = sha256(IMAGE);
    let mut with_sum = plain.to_vec();
    with_sum.extend([("checksum", sum.as_str()), ("checksum-algorithm", "sha256")]);
    let (upid, exit) = download(&api, "local", &with_sum).await;
    assert_eq!(exit, "OK");
    assert!(
        task_log(&api, &upid).await.iter().any(|l| l
            == "calculating checksum of existing file...OK, got correct file already, no need to download")
    );
    let other = "1".repeat(64);
    with_sum[3] = ("checksum", other.as_str());
    assert_eq!(
        download(&api, "local", &with_sum).await.1,
        format!("checksum mismatch: got '{sum}' != expect '{other}', aborting")
    );
    assert_eq!(content(&api, "pve", "local", Some("import")).await.len(), 1);
}

#[tokio::test]
async fn a_download_runs_while_the_server_stalls_and_its_file_appears_only_at_the_end() {
    let server = ImageServer::start(&[("disk.qcow2", IMAGE)]).await;
    let (_sim, api) = start_downloads(PveVersion::Pve9_1).await;
    let url = server.stalled_url("disk.qcow2");
    let upid = api
        .upid(
            Method::POST,
            &download_path("pve", "local"),
            &[
                ("url", &url),
                ("content", "import"),
                ("filename", "disk.qcow2"),
            ],
        )
        .await;
    server.stalled_request_arrived().await;
    let (_, active) = api
        .call(Method::GET, "/nodes/pve/tasks", &[("source", "active")])
        .await;
    let listed = active["data"].as_array().cloned().unwrap_or_default();
    let running = listed.iter().find(|t| t["upid"] == upid).expect("active");
    assert!(running.get("status").is_none(), "{running}");
    let cluster = api.get("/cluster/tasks").await;
    let entry_of = cluster
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["upid"] == upid).cloned())
        .expect("in /cluster/tasks");
    assert_eq!(entry_of["type"], "download");
    assert!(entry_of.get("status").is_none(), "{entry_of}");
    let status = api
        .get(&format!("/nodes/pve/tasks/{}/status", urlencode(&upid)))
        .await;
    assert_eq!(status["status"], "running");
    assert!(
        content(&api, "pve", "local", Some("import"))
            .await
            .is_empty(),
        "no partial file under its name"
    );
    server.release();
    assert_eq!(api.wait_task(&upid).await["exitstatus"], "OK");
    assert_eq!(content(&api, "pve", "local", Some("import")).await.len(), 1);
}

#[tokio::test]
async fn a_download_needs_template_rights_and_network_access_in_both_versions() {
    let server = ImageServer::start(&[("disk.qcow2", IMAGE)]).await;
    for version in PveVersion::ALL {
        let (sim, _root) = start_downloads(version).await;
        let params = [
            ("url", server.url("disk.qcow2")),
            ("content", "import".to_string()),
            ("filename", "disk.qcow2".to_string()),
        ];
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let path = download_path("pve", "local");
        let erin = Api::login_with_new_password(&sim, "erin@pve", "pw-erin").await;
        let body = erin.expect(Method::POST, &path, &params, 403).await;
        assert_eq!(body["message"], "Permission check failed\n", "{version:?}");
        let hank = Api::login_with_new_password(&sim, "hank@pve", "pw-hank").await;
        hank.expect_message(
            Method::POST,
            &path,
            &params,
            (
                403,
                "Permission check failed (/storage/local, Datastore.AllocateTemplate)\n",
            ),
        )
        .await;
        for (user, name) in [("frank@pve", "f.qcow2"), ("gina@pve", "g.qcow2")] {
            let api = Api::login_with_new_password(&sim, user, "pw-user").await;
            let mut own = params.clone();
            own[2] = ("filename", name);
            let upid = api.upid(Method::POST, &path, &own).await;
            assert!(upid.ends_with(&format!(":{user}:")), "{upid}");
            assert_eq!(api.wait_task(&upid).await["exitstatus"], "OK", "{user}");
        }
    }
}

#[tokio::test]
async fn deleting_a_file_is_an_imgdel_task_that_warns_when_the_file_is_gone() {
    let server = ImageServer::start(&[("disk.qcow2", IMAGE)]).await;
    for version in PveVersion::ALL {
        let (sim, api) = start_downloads(version).await;
        let url = server.url("disk.qcow2");
        let params = [
            ("url", url.as_str()),
            ("content", "import"),
            ("filename", "disk.qcow2"),
        ];
        assert_eq!(download(&api, "local", &params).await.1, "OK");
        let path = "/nodes/pve/storage/local/content/local%3Aimport%2Fdisk.qcow2";
        let erin = Api::login_with_new_password(&sim, "erin@pve", "pw-erin").await;
        erin.expect_message(
            Method::DELETE,
            path,
            &[],
            (
                403,
                "Permission check failed (/storage/local, Datastore.Allocate)\n",
            ),
        )
        .await;
        let upid = api.upid(Method::DELETE, path, &[]).await;
        assert!(upid.contains(":imgdel:local:root@pam:"), "{upid}");
        assert_eq!(
            api.wait_task(&upid).await["exitstatus"],
            "OK",
            "{version:?}"
        );
        assert_eq!(
            task_log(&api, &upid).await,
            ["Removed volume 'local:import/disk.qcow2'", "TASK OK"]
        );
        assert!(
            content(&api, "pve", "local", Some("import"))
                .await
                .is_empty()
        );
        // Gone already: a warning, as `free_image` gives.
        let again = "/nodes/pve/storage/local/content/import%2Fdisk.qcow2";
        let upid = api.upid(Method::DELETE, again, &[]).await;
        assert_eq!(api.wait_task(&upid).await["exitstatus"], "WARNINGS: 1");
        assert_eq!(
            task_log(&api, &upid).await,
            [
                "WARN: disk image '/var/lib/vz/import/disk.qcow2' does not exist",
                "Removed volume 'local:import/disk.qcow2'",
                "TASK WARNINGS: 1"
            ]
        );
        // With `delay`, the answer waits for the task and is null when it went well.
        assert_eq!(download(&api, "local", &params).await.1, "OK");
        let body = api
            .expect(Method::DELETE, path, &[("delay", "5")], 200)
            .await;
        assert_eq!(body["data"], Value::Null);
        assert!(
            content(&api, "pve", "local", Some("import"))
                .await
                .is_empty()
        );
        api.expect_param_error(
            Method::DELETE,
            "/nodes/pve/storage/shared/content/local%3Aimport%2Fdisk.qcow2",
            &[],
            ("volume", "storage ID mismatch (local != shared)"),
        )
        .await;
    }
}
