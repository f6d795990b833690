//! `DELETE /nodes/{node}/storage/{storage}/content/{volume}` (pve-storage `Content::delete`, the
//! same in 8.4 and 9.1): `user => 'all'`, then `Datastore.Allocate` on the storage (a VM's backup
//! needs `Datastore.AllocateSpace` and `VM.Backup` instead). It answers the UPID of an `imgdel`
//! task (id `<storage>`, or `<vmid>@<storage>` for a VM's volume); with `delay`, `null` when the
//! task ended in time without error. A file that is not there is no error: the task warns
//! `disk image '<path>' does not exist` and ends `WARNINGS: 1`, as `free_image` does.

use serde_json::Value;

use super::paths;
use crate::error::ApiError;
use crate::router::{Ctx, Reply};
use crate::state::SimState;
use crate::tasks::TaskAction;

/// `$real_volume_id`: the volume as `storage:name`, from a full volume id or a name below the
/// storage of the path.
fn real_volume_id(storage: Option<&str>, volume: &str) -> Result<(String, String), ApiError> {
    if let Some((sid, _)) = volume.split_once(':') {
        if let Some(s) = storage
            && s != sid
        {
            return Err(ApiError::param(
                "volume",
                format!("storage ID mismatch ({sid} != {s})"),
            ));
        }
        return Ok((volume.to_string(), sid.to_string()));
    }
    match storage {
        Some(s) => Ok((format!("{s}:{volume}"), s.to_string())),
        None => Err(ApiError::param(
            "volume",
            "no storage specified - incomplete volume ID",
        )),
    }
}

pub(super) fn delete_volume(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let volume = ctx.param("volume")?;
    let (volid, storage) = real_volume_id(ctx.params.str("storage").as_deref(), &volume)?;
    let s = crate::api::storage::known_storage(&ctx.sim.state.config, &storage)?.clone();
    let volname = volid.split_once(':').map(|(_, n)| n).unwrap_or_default();
    let parsed = paths::parse_volname(&s, volname).map_err(ApiError::internal)?;
    match (parsed.vtype, parsed.owner) {
        ("backup", Some(owner)) => {
            ctx.require(
                &format!("/storage/{storage}"),
                &["Datastore.AllocateSpace"],
                false,
            )?;
            ctx.require(&format!("/vms/{owner}"), &["VM.Backup"], false)?;
        }
        _ => ctx.require(
            &format!("/storage/{storage}"),
            &["Datastore.Allocate"],
            false,
        )?,
    }
    let id = match parsed.owner {
        Some(owner) => format!("{owner}@{storage}"),
        None => storage.clone(),
    };
    let action = TaskAction::DeleteVolume {
        volid,
        node: ctx.sim.state.volume_node(&storage, &node),
    };
    let user = ctx.auth_id();
    let upid = ctx
        .sim
        .state
        .start_task(&node, "imgdel", &id, &user, action, ctx.now_ms);
    let Some(delay) = ctx.params.int("delay") else {
        return Ok(Value::String(upid).into());
    };
    // `delay`: wait for the task that long; it is done well within a second here.
    let duration = ctx.sim.state.config.task_durations_ms.for_kind("imgdel");
    if duration > delay.max(0) as u64 * 1000 {
        return Ok(Value::String(upid).into());
    }
    let now = ctx.now_ms;
    ctx.sim.state.set_task_end(&upid, now);
    ctx.sim.advance(now);
    let status = ctx
        .sim
        .state
        .task(&upid)
        .and_then(|t| t.exitstatus.clone())
        .unwrap_or_default();
    if status == "OK" || status.starts_with("WARNINGS") {
        Ok(Value::Null.into())
    } else {
        Err(ApiError::internal(status))
    }
}

/// The effect of an `imgdel` task: the volume goes (`Removed volume '<volid>'`); a missing file
/// only warns, and the task ends `WARNINGS: 1` (returned as its "error" text).
pub fn remove_volume(
    state: &mut SimState,
    volid: &str,
    node: Option<&str>,
    log: &mut Vec<String>,
) -> Result<(), String> {
    let before = state.volumes.len();
    state
        .volumes
        .retain(|v| !(v.volid == volid && v.node.as_deref() == node));
    let removed = state.volumes.len() < before;
    super::forget_file(state, volid, node);
    if !removed {
        let (sid, volname) = volid.split_once(':').unwrap_or(("", volid));
        let path = state
            .config
            .storage(sid)
            .map(|s| paths::file_path(s, volname))
            .unwrap_or_else(|| volname.to_string());
        log.push(format!("WARN: disk image '{path}' does not exist"));
    }
    log.push(format!("Removed volume '{volid}'"));
    if removed {
        Ok(())
    } else {
        Err("WARNINGS: 1".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_is_named_in_full_or_below_the_storage_of_the_path() {
        assert_eq!(
            real_volume_id(Some("local"), "iso/a.iso").ok(),
            Some(("local:iso/a.iso".into(), "local".into()))
        );
        assert_eq!(
            real_volume_id(Some("local"), "local:iso/a.iso").ok(),
            Some(("local:iso/a.iso".into(), "local".into()))
        );
        let e = real_volume_id(Some("nfs"), "local:iso/a.iso").expect_err("mismatch");
        assert_eq!(e.code, 400);
        assert!(real_volume_id(None, "iso/a.iso").is_err());
    }
}
