//! Task durations under the capacity model, decided when the task starts: a create allocates
//! its disks under the storage lock, a full clone allocates and then copies its source's disks
//! at the bandwidth it shares with the other copies on that storage, a start takes a base time
//! plus a term per GiB of memory. Other tasks keep `task_durations_ms`.

use std::collections::BTreeMap;

use super::locks::{
    Allocation, shared_storage_lock_timeout_message, storage_key, storage_lock_timeout_message,
};
use super::model::CapacityModel;
use crate::qemu::drive::{Drive, drive_size, is_drive_key};
use crate::state::{Sim, SimState};
use crate::tasks::TaskAction;

/// Disks a create request allocates: count per storage.
fn new_disks(conf: &BTreeMap<String, String>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (k, v) in conf {
        if let Some((Some(storage), _)) = is_drive_key(k)
            .then(|| Drive::parse(k, v))
            .flatten()
            .and_then(|d| d.new_disk(None))
        {
            *out.entry(storage).or_default() += 1;
        }
    }
    out
}

/// The disks a clone copies: (storage, bytes) of each non-CD-ROM, non-cloud-init drive.
fn source_disks(state: &SimState, vmid: u32) -> Vec<(String, u64)> {
    let Some(vm) = state.vms.get(&vmid) else {
        return Vec::new();
    };
    vm.conf
        .iter()
        .filter(|(k, _)| is_drive_key(k))
        .filter_map(|(k, v)| {
            let d = Drive::parse(k, v)?;
            (!d.is_cdrom() && !d.is_cloudinit())
                .then(|| Some((d.storage()?.to_string(), drive_size(v))))
                .flatten()
        })
        .collect()
}

/// Takes storage `storage`'s allocation lock for `disks` allocations; `Err` holds the time and
/// message of a lock timeout.
fn allocate(
    sim: &mut Sim,
    model: &CapacityModel,
    storage: &str,
    node: &str,
    disks: u64,
    now_ms: u64,
) -> Result<u64, (u64, String)> {
    let shared = sim.state.config.storage(storage).is_some_and(|s| s.shared);
    let key = storage_key(storage, node, shared);
    let hold = disks * model.alloc_ms_per_disk;
    let storages = &mut sim.storages;
    match storages.allocate(&key, now_ms, hold, model.storage_lock_timeout_ms) {
        Allocation::Done { at_ms, waited_ms } => {
            if waited_ms > 0 {
                storages.note_lock_wait(waited_ms, false);
            }
            Ok(at_ms)
        }
        Allocation::TimedOut { at_ms } => {
            storages.note_lock_wait(model.storage_lock_timeout_ms, true);
            let message = if shared {
                shared_storage_lock_timeout_message(storage)
            } else {
                storage_lock_timeout_message(storage)
            };
            Err((at_ms, message))
        }
    }
}

/// Sets when task `upid` (just started on `node` at `now_ms`) ends under `model`, or makes it
/// fail with a storage lock timeout. Tasks the model does not cover keep their duration.
pub fn plan_task(sim: &mut Sim, model: &CapacityModel, upid: &str, node: &str, now_ms: u64) {
    let Some(action) = sim.state.task(upid).map(|t| t.action.clone()) else {
        return;
    };
    let end = match &action {
        TaskAction::Create { conf, .. } => {
            let mut done = now_ms;
            for (storage, disks) in new_disks(conf) {
                match allocate(sim, model, &storage, node, disks, done) {
                    Ok(at) => done = at,
                    Err(failure) => return fail(&mut sim.state, upid, failure),
                }
            }
            match imports(&sim.state, conf, node) {
                Some((target, bytes)) => {
                    let copy = (target.as_str(), done, bytes, model.create_task_ms);
                    return copy_then(sim, model, upid, node, now_ms, copy);
                }
                None => Ok(done + model.create_task_ms),
            }
        }
        TaskAction::Clone {
            vmid,
            full,
            storage,
            ..
        } => {
            let disks = source_disks(&sim.state, *vmid);
            let target = storage
                .clone()
                .or_else(|| disks.first().map(|(s, _)| s.clone()))
                .unwrap_or_default();
            let allocated = allocate(sim, model, &target, node, disks.len() as u64, now_ms);
            match allocated {
                Err(failure) => return fail(&mut sim.state, upid, failure),
                Ok(at) if !*full => Ok(at + model.linked_clone_ms),
                Ok(at) => {
                    let bytes = disks.iter().map(|(_, b)| b).sum();
                    return copy_then(sim, model, upid, node, now_ms, (&target, at, bytes, 0));
                }
            }
        }
        TaskAction::Start { vmid } => {
            let memory = sim.state.vms.get(vmid).map_or(512, |vm| vm.memory_mib());
            Ok(now_ms + model.start_ms(memory))
        }
        _ => Err(()),
    };
    if let Ok(end) = end {
        sim.state.set_task_end(upid, end);
    }
}

/// Adds task `upid`'s copy `(storage, start_ms, bytes, tail_ms)` to that storage's shared
/// bandwidth and moves the end of every task copying there.
fn copy_then(
    sim: &mut Sim,
    model: &CapacityModel,
    upid: &str,
    node: &str,
    now_ms: u64,
    (storage, start_ms, bytes, tail_ms): (&str, u64, u64, u64),
) {
    let shared = sim.state.config.storage(storage).is_some_and(|s| s.shared);
    let key = storage_key(storage, node, shared);
    let bw = model.bytes_per_ms(storage);
    let ends = sim
        .storages
        .add_copy(&key, upid, now_ms, start_ms, bytes, tail_ms, bw);
    for (task, end) in ends {
        sim.state.set_task_end(&task, end);
    }
}

/// The `import-from` copies of a create: the first import's target storage and the bytes of all
/// its sources (one copy per task).
fn imports(state: &SimState, conf: &BTreeMap<String, String>, node: &str) -> Option<(String, u64)> {
    let mut target = None;
    let mut bytes = 0;
    for (k, v) in conf.iter().filter(|(k, _)| is_drive_key(k)) {
        let Some(d) = Drive::parse(k, v) else {
            continue;
        };
        if let Some(src) = d.opts.get("import-from") {
            target = target.or_else(|| d.storage().map(str::to_string));
            bytes += state.volume(src, node).map_or(0, |vol| vol.size);
        }
    }
    target.map(|t| (t, bytes))
}

fn fail(state: &mut SimState, upid: &str, (at_ms, message): (u64, String)) {
    if let Some(task) = state.task_mut(upid) {
        task.injected_failure = Some(message);
    }
    state.set_task_end(upid, at_ms);
}
