//! Files on file-based storages: `POST /nodes/{node}/storage/{storage}/download-url` (pve-storage
//! `API2::Storage::Status::download_url`) and `DELETE …/content/{volume}` (`Content::delete`).
//!
//! A download is a `download` task whose id is the (encoded) file name. The handler does PVE's
//! synchronous checks, starts the task (it has no set end: it runs until its fetch is done) and
//! queues a [`DownloadJob`]; the pipeline spawns the job ([`spawn_pending`]) once the handler has
//! returned and the state is unlocked. The job ([`fetch`]) really fetches the URL over HTTP, from
//! loopback hosts only, then takes the lock to make the volume appear under its final name and to
//! end the task, as PVE's worker renames its temporary file only when everything went well.

mod delete;
mod digest;
mod fetch;
pub mod paths;

use std::sync::Arc;

use serde_json::Value;

use crate::error::ApiError;
use crate::pipeline::Shared;
use crate::router::{Ctx, Perm, Reply, Route};
use crate::state::SimState;
use crate::tasks::TaskAction;

pub use digest::ALGORITHMS;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(
            "POST",
            "/nodes/{node}/storage/{storage}/download-url",
            Perm::Custom(download_permission),
            download_url,
        ),
        Route::new(
            "DELETE",
            "/nodes/{node}/storage/{storage}/content/{volume}",
            Perm::All,
            delete::delete_volume,
        ),
    ]
}

/// Where a download goes.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Storage id.
    pub storage: String,
    /// The node whose copy it is (`None` on a shared storage).
    pub node: Option<String>,
    /// `local:import/disk.qcow2`.
    pub volid: String,
    /// The file (`/var/lib/vz/import/disk.qcow2`), as the task log names it.
    pub path: String,
    /// `iso`, `vztmpl` or `import`.
    pub content: String,
    /// `iso`, `tgz`, `qcow2`, `raw`, `vmdk`, `ova`.
    pub format: String,
}

/// A download waiting to be spawned, or running.
#[derive(Debug, Clone)]
pub struct DownloadJob {
    /// Its task.
    pub upid: String,
    /// The URL.
    pub url: String,
    /// Where the file goes.
    pub dest: Destination,
    /// `(algorithm, expected hex)`.
    pub checksum: Option<(String, String)>,
    /// `compression`.
    pub compression: Option<String>,
    /// `verify-certificates` (default on).
    pub verify_certificates: bool,
}

/// The state's key of a file's checksums.
fn file_key(volid: &str, node: Option<&str>) -> String {
    format!("{}/{volid}", node.unwrap_or("*"))
}

/// The checksums of the file `volid` on `node` (empty for files the simulator did not download,
/// such as the ISOs of the cluster config).
pub fn file_checksums(
    state: &SimState,
    volid: &str,
    node: Option<&str>,
) -> std::collections::BTreeMap<String, String> {
    state
        .file_checksums
        .get(&file_key(volid, node))
        .cloned()
        .unwrap_or_default()
}

/// Forgets the checksums of a removed file.
pub fn forget_file(state: &mut SimState, volid: &str, node: Option<&str>) {
    state.file_checksums.remove(&file_key(volid, node));
}

/// `['and', ['perm', '/storage/{storage}', ['Datastore.AllocateTemplate']], ['or', ['perm', '/',
/// ['Sys.Audit', 'Sys.Modify']], ['perm', '/nodes/{node}', ['Sys.AccessNetwork']]]]`, the same in
/// 8.4 and 9.1: the first check names its privilege in the 403, the `or` fails bare.
fn download_permission(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    let storage = ctx.params.str("storage").unwrap_or_else(|| "-".into());
    let node = ctx.params.str("node").unwrap_or_else(|| "-".into());
    ctx.require(
        &format!("/storage/{storage}"),
        &["Datastore.AllocateTemplate"],
        false,
    )?;
    if ctx.check("/", &["Sys.Audit", "Sys.Modify"], false)
        || ctx.check(&format!("/nodes/{node}"), &["Sys.AccessNetwork"], false)
    {
        Ok(())
    } else {
        Err(ApiError::perm_bare())
    }
}

fn download_url(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let storage = ctx.param("storage")?;
    let content = ctx.param("content")?;
    let url = ctx.param("url")?;
    let s = crate::api::storage::known_storage(&ctx.sim.state.config, &storage)?.clone();
    if !s.on_node(&node) {
        return Err(ApiError::internal(format!(
            "storage '{storage}' is not available on node '{node}'"
        )));
    }
    if !s.is_path_based() {
        return Err(ApiError::internal(format!(
            "can't upload to storage type '{}', not a file based storage!",
            s.r#type
        )));
    }
    if !s.content.contains(&content) {
        return Err(ApiError::internal(format!(
            "storage '{storage}' is not configured for content-type '{content}'"
        )));
    }
    let filename = paths::normalize_filename(&ctx.param("filename")?);
    let (volname, format) =
        paths::download_target(&content, &filename).map_err(|e| ApiError::param("filename", e))?;
    let checksum = match (
        ctx.params.str("checksum"),
        ctx.params.str("checksum-algorithm"),
    ) {
        (Some(sum), Some(algorithm)) => Some((algorithm, sum)),
        _ => None,
    };
    let dest = Destination {
        node: ctx.sim.state.volume_node(&storage, &node),
        volid: format!("{storage}:{volname}"),
        path: paths::file_path(&s, &volname),
        storage,
        content,
        format,
    };
    let user = ctx.auth_id();
    let id = paths::encode_task_id(&filename);
    let action = TaskAction::Download {
        volid: dest.volid.clone(),
    };
    let upid = ctx
        .sim
        .state
        .start_task(&node, "download", &id, &user, action, ctx.now_ms);
    // The task ends when its fetch does, not after a set time.
    ctx.sim.state.set_task_end(&upid, u64::MAX);
    ctx.sim.downloads.push(DownloadJob {
        upid: upid.clone(),
        url,
        dest,
        checksum,
        compression: ctx.params.str("compression"),
        verify_certificates: ctx.params.get("verify-certificates").is_none()
            || ctx.params.flag("verify-certificates"),
    });
    Ok(Value::String(upid).into())
}

/// Spawns the downloads the last handler queued (called by the pipeline with the state unlocked).
pub(crate) fn spawn_pending(shared: &Arc<Shared>) {
    let jobs = std::mem::take(&mut shared.lock().downloads);
    for job in jobs {
        tokio::spawn(fetch::run(shared.clone(), job));
    }
}

/// Ends the downloads a restored state still lists as running: their fetch died with the
/// simulator that ran it, as a worker dies with its node (PVE then shows `unexpected status`).
pub fn abandon_running_downloads(state: &mut SimState, now_ms: u64) {
    let abandoned: Vec<String> = state
        .tasks
        .iter()
        .filter(|t| t.running() && matches!(t.action, TaskAction::Download { .. }))
        .map(|t| t.upid.clone())
        .collect();
    for upid in abandoned {
        state.running.retain(|r| r.upid != upid);
        if let Some(t) = state.task_mut(&upid) {
            t.exitstatus = Some("unexpected status".to_string());
            t.endtime = Some(now_ms / 1000);
        }
    }
}

/// The effect of an `imgdel` task.
pub use delete::remove_volume;
