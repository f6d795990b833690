//! `/cluster`, `/cluster/resources`, `/cluster/status`, `/cluster/nextid`.

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::router::{Ctx, Perm, Reply, Route};
use crate::state::Power;

/// The cluster routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/cluster", Perm::All, |_| {
            let dirs = [
                "log",
                "options",
                "resources",
                "status",
                "tasks",
                "nextid",
                "backup",
                "ha",
                "sdn",
            ];
            Ok(Value::Array(dirs.iter().map(|d| json!({ "name": d })).collect()).into())
        }),
        Route::new("GET", "/cluster/resources", Perm::All, resources),
        Route::new(
            "GET",
            "/cluster/status",
            Perm::Check {
                path: "/",
                privs: &["Sys.Audit"],
                any: false,
            },
            status,
        ),
        Route::new("GET", "/cluster/nextid", Perm::All, nextid),
    ]
}

fn resources(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let filter = ctx.params.str("type");
    let want = |t: &str| filter.as_deref().is_none_or(|f| f == t);
    let state = &ctx.sim.state;
    let now = ctx.now_secs();
    let mut out = Vec::new();
    if want("vm") {
        for vm in state.vms.values() {
            if !ctx.check(&format!("/vms/{}", vm.vmid), &["VM.Audit"], false) {
                continue;
            }
            let running = vm.power != Power::Stopped;
            let mut m = Map::new();
            m.insert("id".into(), json!(format!("qemu/{}", vm.vmid)));
            m.insert("vmid".into(), json!(vm.vmid));
            m.insert("node".into(), json!(vm.node));
            m.insert("type".into(), json!("qemu"));
            let rrd_delay = state.config.rrd_delay_ms;
            if rrd_delay > 0 && ctx.now_ms < vm.created_ms + rrd_delay {
                // Not yet in pvestatd's RRD cache: only the live fields.
                m.insert("status".into(), json!("unknown"));
                if let Some(tags) = vm.conf.get("tags") {
                    m.insert("tags".into(), json!(tags));
                }
                if let Some(lock) = &vm.lock {
                    m.insert("lock".into(), json!(lock));
                }
                if let Some(pool) = state.access.vm_pool(vm.vmid) {
                    m.insert("pool".into(), json!(pool));
                }
                out.push(Value::Object(m));
                continue;
            }
            m.insert(
                "status".into(),
                json!(if running { "running" } else { "stopped" }),
            );
            m.insert("name".into(), json!(vm.name()));
            m.insert("template".into(), json!(u8::from(vm.is_template())));
            m.insert("maxcpu".into(), json!(vm.cpus()));
            m.insert("cpu".into(), json!(if running { 0.01 } else { 0.0 }));
            m.insert("maxmem".into(), json!(vm.memory_mib() << 20));
            m.insert(
                "mem".into(),
                json!(if running {
                    (vm.memory_mib() << 20) / 2
                } else {
                    0
                }),
            );
            let maxdisk: u64 = vm
                .conf
                .iter()
                .filter(|(k, v)| crate::qemu::drive::is_drive_key(k) && !v.contains("media=cdrom"))
                .map(|(_, v)| crate::qemu::drive::drive_size(v))
                .next()
                .unwrap_or(0);
            m.insert("maxdisk".into(), json!(maxdisk));
            m.insert("disk".into(), json!(0));
            m.insert(
                "uptime".into(),
                json!(vm.started_at.map(|s| now.saturating_sub(s)).unwrap_or(0)),
            );
            for k in ["netin", "netout", "diskread", "diskwrite"] {
                m.insert(k.into(), json!(0));
            }
            if let Some(tags) = vm.conf.get("tags") {
                m.insert("tags".into(), json!(tags));
            }
            if let Some(lock) = &vm.lock {
                m.insert("lock".into(), json!(lock));
            }
            if let Some(pool) = state.access.vm_pool(vm.vmid) {
                m.insert("pool".into(), json!(pool));
            }
            out.push(Value::Object(m));
        }
    }
    if want("node") {
        for n in &state.config.nodes {
            let mut m = Map::new();
            m.insert("id".into(), json!(format!("node/{}", n.name)));
            m.insert("node".into(), json!(n.name));
            m.insert("type".into(), json!("node"));
            m.insert(
                "status".into(),
                json!(if n.online { "online" } else { "offline" }),
            );
            m.insert("level".into(), json!(""));
            if n.online && ctx.check(&format!("/nodes/{}", n.name), &["Sys.Audit"], false) {
                m.extend(super::nodes::node_stats(state, &n.name, now));
                m.insert("cgroup-mode".into(), json!(2));
            }
            out.push(Value::Object(m));
        }
    }
    if want("storage") {
        for n in &state.config.nodes {
            for s in state.config.storages.iter().filter(|s| s.on_node(&n.name)) {
                if !ctx.check(&format!("/storage/{}", s.id), &["Datastore.Audit"], false) {
                    continue;
                }
                out.push(json!({
                    "id": format!("storage/{}/{}", n.name, s.id),
                    "storage": s.id,
                    "node": n.name,
                    "type": "storage",
                    "plugintype": s.r#type,
                    "status": if n.online { "available" } else { "unknown" },
                    "shared": u8::from(s.shared),
                    "content": s.content.join(","),
                    "disk": state.storage_used(&s.id, &n.name),
                    "maxdisk": s.capacity.0,
                }));
            }
        }
    }
    if filter.is_none() {
        for name in state.access.pools().keys() {
            if ctx.check(&format!("/pool/{name}"), &["Pool.Audit"], false) {
                out.push(json!({ "id": format!("/pool/{name}"), "pool": name, "type": "pool" }));
            }
        }
    }
    if want("sdn") && ctx.check("/sdn/zones/localnetwork", &["SDN.Audit"], false) {
        for n in &state.config.nodes {
            out.push(json!({
                "id": format!("sdn/{}/localnetwork", n.name),
                "sdn": "localnetwork",
                "node": n.name,
                "type": "sdn",
                "status": "ok",
            }));
        }
    }
    Ok(Value::Array(out).into())
}

fn status(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let state = &ctx.sim.state;
    let mut out = Vec::new();
    let clustered = state.config.cluster_name.is_some();
    if let Some(name) = &state.config.cluster_name {
        out.push(json!({
            "type": "cluster", "id": "cluster", "name": name, "nodes": state.config.nodes.len(),
            "quorate": 1, "version": state.config.nodes.len() + 1,
        }));
    }
    for (i, n) in state.config.nodes.iter().enumerate() {
        out.push(json!({
            "type": "node", "id": format!("node/{}", n.name), "name": n.name, "online": u8::from(n.online),
            "local": u8::from(i == 0), "nodeid": if clustered { i + 1 } else { 0 },
            "ip": format!("127.0.0.{}", i + 1), "level": "",
        }));
    }
    Ok(Value::Array(out).into())
}

fn nextid(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let state = &ctx.sim.state;
    if let Some(id) = ctx.params.int("vmid") {
        let taken = u32::try_from(id).is_ok_and(|id| state.vms.contains_key(&id));
        if taken {
            return Err(ApiError::param("vmid", format!("VM {id} already exists")));
        }
        return Ok(Value::String(id.to_string()).into());
    }
    let (lower, upper) = (state.config.nextid.lower, state.config.nextid.upper);
    (lower..upper)
        .find(|id| !state.vms.contains_key(id))
        .map(|id| Value::String(id.to_string()).into())
        .ok_or_else(|| {
            ApiError::internal(format!(
                "unable to get any free VMID in range [{lower}, {upper}]"
            ))
        })
}
