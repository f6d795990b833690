//! `/nodes`, `/nodes/{node}`, node status, network and storages.

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::router::{Ctx, Perm, Reply, Route};
use crate::state::{Power, SimState};

/// The node routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/nodes", Perm::All, list),
        Route::new("GET", "/nodes/{node}", Perm::All, index),
        Route::new(
            "GET",
            "/nodes/{node}/status",
            Perm::Check {
                path: "/nodes/{node}",
                privs: &["Sys.Audit"],
                any: false,
            },
            status,
        ),
        Route::new("GET", "/nodes/{node}/network", Perm::All, network),
        Route::new("GET", "/nodes/{node}/storage", Perm::All, storage_list),
        Route::new(
            "GET",
            "/nodes/{node}/storage/{storage}/content",
            Perm::Check {
                path: "/storage/{storage}",
                privs: &["Datastore.Audit", "Datastore.AllocateSpace"],
                any: true,
            },
            storage_content,
        ),
    ]
}

/// Memory in use on a node: a 2 GiB base plus running VMs.
pub fn node_mem_used(state: &SimState, node: &str) -> u64 {
    let vms: u64 = state
        .vms
        .values()
        .filter(|v| v.node == node && v.power != Power::Stopped)
        .map(|v| v.memory_mib() << 20)
        .sum();
    (2 << 30) + vms
}

/// The stats of a node as `/nodes` and `/cluster/resources` show them.
pub fn node_stats(state: &SimState, node: &str, now_secs: u64) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(n) = state.config.node(node) {
        let running = state
            .vms
            .values()
            .filter(|v| v.node == node && v.power != Power::Stopped)
            .count();
        m.insert("cpu".into(), json!((running as f64 * 0.01).min(1.0)));
        m.insert("maxcpu".into(), json!(n.cpus));
        m.insert(
            "mem".into(),
            json!(node_mem_used(state, node).min(n.memory.0)),
        );
        m.insert("maxmem".into(), json!(n.memory.0));
        m.insert("disk".into(), json!(3u64 << 30));
        m.insert("maxdisk".into(), json!(100u64 << 30));
        m.insert(
            "uptime".into(),
            json!(now_secs.saturating_sub(state.boot_time)),
        );
    }
    m
}

fn list(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let fp = ctx.sim.state.tls.fingerprint().unwrap_or_default();
    let now = ctx.now_secs();
    let mut out = Vec::new();
    for n in &ctx.sim.state.config.nodes {
        let mut m = Map::new();
        m.insert("node".into(), json!(n.name));
        m.insert(
            "status".into(),
            json!(if n.online { "online" } else { "offline" }),
        );
        m.insert("id".into(), json!(format!("node/{}", n.name)));
        m.insert("type".into(), json!("node"));
        m.insert("level".into(), json!(""));
        m.insert("ssl_fingerprint".into(), json!(fp));
        if n.online && ctx.check(&format!("/nodes/{}", n.name), &["Sys.Audit"], false) {
            m.extend(node_stats(&ctx.sim.state, &n.name, now));
        }
        out.push(Value::Object(m));
    }
    Ok(Value::Array(out).into())
}

fn index(_ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let dirs = [
        "qemu", "lxc", "storage", "network", "tasks", "status", "version", "syslog", "services",
        "time", "dns", "execute",
    ];
    Ok(Value::Array(dirs.iter().map(|d| json!({ "name": d })).collect()).into())
}

fn status(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let state = &ctx.sim.state;
    let n = state
        .config
        .node(&node)
        .ok_or_else(|| ApiError::internal(format!("no such node '{node}'")))?;
    let used = node_mem_used(state, &node).min(n.memory.0);
    let v = &state.config.version_info();
    Ok(json!({
        "cpu": 0.02,
        "wait": 0.0,
        "idle": 0,
        "uptime": ctx.now_secs().saturating_sub(state.boot_time),
        "loadavg": ["0.12", "0.08", "0.05"],
        "kversion": "Linux 6.8.12-9-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-9 (2025-03-16T19:18Z) x86_64",
        "pveversion": format!("pve-manager/{}/{}", v.version, v.repoid),
        "cpuinfo": { "cpus": n.cpus, "cores": n.cpus / 2, "sockets": 1, "model": "pve-sim virtual CPU", "mhz": "2999.999", "hvm": "1", "flags": "", "user_hz": 100 },
        "memory": { "total": n.memory.0, "used": used, "free": n.memory.0 - used },
        "swap": { "total": 8u64 << 30, "used": 0, "free": 8u64 << 30 },
        "rootfs": { "total": 100u64 << 30, "used": 3u64 << 30, "avail": 97u64 << 30, "free": 97u64 << 30 },
        "ksm": { "shared": 0 },
        "boot-info": { "mode": "efi", "secureboot": 0 },
        "current-kernel": { "sysname": "Linux", "release": "6.8.12-9-pve", "machine": "x86_64", "version": "#1 SMP PREEMPT_DYNAMIC PMX 6.8.12-9 (2025-03-16T19:18Z)" },
    })
    .into())
}

fn network(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let filter = ctx.params.str("type");
    let Some(n) = ctx.sim.state.config.node(&node) else {
        return Ok(Value::Array(vec![]).into());
    };
    let mut out = Vec::new();
    let want = |t: &str| match filter.as_deref() {
        None => true,
        Some("any_bridge") | Some("any_local_bridge") => t == "bridge",
        Some(f) => f == t,
    };
    if want("eth") {
        out.push(json!({ "iface": "eno1", "type": "eth", "method": "manual", "method6": "manual", "families": ["inet"], "active": 1, "exists": 1, "priority": 3 }));
    }
    if want("bridge") {
        for (i, b) in n.bridges.iter().enumerate() {
            let mut e = json!({
                "iface": b, "type": "bridge", "method": "manual", "method6": "manual", "families": ["inet"],
                "active": 1, "autostart": 1, "bridge_ports": if i == 0 { "eno1" } else { "" }, "bridge_stp": "off", "bridge_fd": "0",
                "priority": 4 + i,
            });
            if i == 0 {
                e["method"] = json!("static");
                e["address"] = json!("192.168.100.2");
                e["netmask"] = json!("24");
                e["cidr"] = json!("192.168.100.2/24");
                e["gateway"] = json!("192.168.100.1");
            }
            out.push(e);
        }
    }
    Ok(Value::Array(out).into())
}

fn storage_list(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let content = ctx.params.str("content");
    let only = ctx.params.str("storage");
    let with_format = ctx.params.flag("format");
    let state = &ctx.sim.state;
    if let Some(s) = &only
        && state.config.storage(s).is_none()
    {
        return Err(ApiError::param("storage", "No such storage."));
    }
    let mut out = Vec::new();
    for s in &state.config.storages {
        if !s.on_node(&node) || only.as_ref().is_some_and(|o| o != &s.id) {
            continue;
        }
        if let Some(c) = &content
            && !crate::params::split_list(c).any(|c| s.content.iter().any(|x| x == c))
        {
            continue;
        }
        if !ctx.check(
            &format!("/storage/{}", s.id),
            &["Datastore.Audit", "Datastore.AllocateSpace"],
            true,
        ) {
            continue;
        }
        let used = state.storage_used(&s.id, &node);
        let total = s.capacity.0;
        let mut e = json!({
            "storage": s.id, "type": s.r#type, "content": s.content.join(","), "enabled": 1, "active": 1,
            "shared": u8::from(s.shared), "total": total, "used": used, "avail": total.saturating_sub(used),
        });
        if total > 0 {
            e["used_fraction"] = json!(used as f64 / total as f64);
        }
        if with_format {
            let fmt = state.image_format(&s.id);
            e["format"] = json!([{ "raw": 1, "qcow2": u8::from(fmt == "qcow2"), "vmdk": u8::from(fmt == "qcow2") }, fmt]);
        }
        out.push(e);
    }
    Ok(Value::Array(out).into())
}

fn storage_content(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let storage = ctx.param("storage")?;
    let content = ctx.params.str("content");
    let vmid = ctx.params.int("vmid");
    let state = &ctx.sim.state;
    if !state
        .config
        .storage(&storage)
        .is_some_and(|s| s.on_node(&node))
    {
        return Err(ApiError::internal(format!(
            "storage '{storage}' does not exist"
        )));
    }
    let ctime = state.boot_time;
    let out: Vec<Value> = state
        .volumes
        .iter()
        .filter(|v| v.storage == storage && v.node.as_deref().is_none_or(|n| n == node))
        .filter(|v| content.as_ref().is_none_or(|c| c == &v.content))
        .filter(|v| vmid.is_none_or(|id| v.vmid.map(i64::from) == Some(id)))
        .map(|v| {
            let mut e = json!({ "volid": v.volid, "content": v.content, "format": v.format, "size": v.size, "ctime": ctime });
            if let Some(id) = v.vmid {
                e["vmid"] = json!(id);
                e["used"] = json!(v.size);
            }
            e
        })
        .collect();
    Ok(Value::Array(out).into())
}
