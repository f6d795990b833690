//! The `/pools` HTTP API as PVE 8.4 serves it (9.1 also wants pool names to start with a letter: not modelled) (pve-manager `API2/Pool.pm`): list, create,
//! update members (VMs and storages, with `delete` and `allow-move`), read and delete pools, in
//! both the 8.1+ form (`/pools?poolid=`) and the older `/pools/{poolid}` form.

use serde_json::{Map, Value, json};

use super::{AccessError, split_list};
use crate::error::ApiError;
use crate::router::{Ctx, Perm, Reply, Route};

/// The `/pools` routes.
pub fn routes() -> Vec<Route> {
    let allocate = Perm::Check {
        path: "/pool/{poolid}",
        privs: &["Pool.Allocate"],
        any: false,
    };
    let audit = Perm::Check {
        path: "/pool/{poolid}",
        privs: &["Pool.Audit"],
        any: false,
    };
    vec![
        super::api::route("GET", "/pools", Perm::All, list_pools),
        super::api::route("POST", "/pools", allocate, create_pool),
        super::api::route("PUT", "/pools", allocate, update_pool),
        super::api::route("DELETE", "/pools", allocate, delete_pool),
        super::api::route("GET", "/pools/{poolid}", audit, read_pool),
        super::api::route("PUT", "/pools/{poolid}", allocate, update_pool),
        super::api::route("DELETE", "/pools/{poolid}", allocate, delete_pool),
    ]
}

/// The members of a pool as `/cluster/resources`-style entries, optionally of one type.
fn members(ctx: &Ctx<'_>, pool: &str, kind: Option<&str>) -> Vec<Value> {
    let state = &ctx.sim.state;
    let Some(p) = state.access.pool(pool) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if kind.is_none_or(|k| k == "qemu") {
        for vm in p.vms.iter().filter_map(|id| state.vms.get(id)) {
            let running = matches!(vm.power, crate::state::Power::Running);
            out.push(json!({
                "id": format!("qemu/{}", vm.vmid),
                "vmid": vm.vmid,
                "node": vm.node,
                "type": "qemu",
                "name": vm.name(),
                "status": if running { "running" } else { "stopped" },
                "template": u8::from(vm.is_template()),
                "maxcpu": vm.cpus(),
                "maxmem": vm.memory_mib() << 20,
            }));
        }
    }
    if kind.is_none_or(|k| k == "storage") {
        for id in &p.storage {
            let Some(s) = state.config.storages.iter().find(|s| &s.id == id) else {
                continue;
            };
            let Some(node) = state.config.nodes.iter().find(|n| s.on_node(&n.name)) else {
                continue;
            };
            out.push(crate::api::storage_resource(state, s, node));
        }
    }
    out
}

/// `GET /pools`: the pools with `Pool.Audit`; with `poolid`, that pool with its members.
fn list_pools(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let only = ctx.params.str("poolid");
    let kind = ctx.params.str("type");
    if let Some(p) = &only
        && ctx.sim.state.access.pool(p).is_none()
    {
        return Err(ApiError::internal(AccessError::NoSuchPool(p.clone())));
    }
    let names: Vec<String> = ctx.sim.state.access.pools().keys().cloned().collect();
    let mut out = Vec::new();
    for name in names {
        if only.as_ref().is_some_and(|o| *o != name)
            || !ctx.check(&format!("/pool/{name}"), &["Pool.Audit"], false)
        {
            continue;
        }
        let mut m = Map::new();
        m.insert("poolid".into(), json!(name));
        if let Some(c) = ctx
            .sim
            .state
            .access
            .pool(&name)
            .and_then(|p| p.comment.clone())
        {
            m.insert("comment".into(), json!(c));
        }
        if only.is_some() {
            m.insert(
                "members".into(),
                Value::Array(members(ctx, &name, kind.as_deref())),
            );
        }
        out.push(Value::Object(m));
    }
    Ok(Value::Array(out).into())
}

/// `GET /pools/{poolid}`: comment and members.
fn read_pool(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let name = ctx.param("poolid")?;
    let Some(pool) = ctx.sim.state.access.pool(&name) else {
        return Err(ApiError::internal(AccessError::NoSuchPool(name)));
    };
    let comment = pool.comment.clone();
    let kind = ctx.params.str("type");
    let mut m = Map::new();
    m.insert(
        "members".into(),
        Value::Array(members(ctx, &name, kind.as_deref())),
    );
    if let Some(c) = comment {
        m.insert("comment".into(), json!(c));
    }
    Ok(Value::Object(m).into())
}

/// `POST /pools`.
fn create_pool(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let name = ctx.param("poolid")?;
    let comment = ctx.params.str("comment");
    ctx.sim
        .state
        .access
        .pool_add(&name, comment.as_deref())
        .map_err(|e| ApiError::internal(format!("create pool failed: {e}")))?;
    ctx.sim.dirty = true;
    Ok(Value::Null.into())
}

/// `PUT /pools` and `PUT /pools/{poolid}`: comment and members. Adding or removing a member needs
/// the right to modify permissions on it.
fn update_pool(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let name = ctx.param("poolid")?;
    let vms_text = ctx.params.str("vms").unwrap_or_default();
    let stores_text = ctx.params.str("storage").unwrap_or_default();
    let mut vms = Vec::new();
    for v in split_list(&vms_text) {
        let id = v.parse::<u32>().map_err(|_| {
            ApiError::param(
                "vms",
                format!("invalid format - value '{v}' does not look like a valid VM ID\n"),
            )
        })?;
        vms.push(id);
    }
    let stores: Vec<String> = split_list(&stores_text).map(str::to_string).collect();
    let who = ctx.auth_id();
    let fail = |msg: String| ApiError::internal(format!("update pools failed: {msg}"));
    if ctx.sim.state.access.pool(&name).is_none() {
        return Err(fail(AccessError::NoSuchPool(name).to_string()));
    }
    for path in vms
        .iter()
        .map(|v| format!("/vms/{v}"))
        .chain(stores.iter().map(|s| format!("/storage/{s}")))
    {
        if !ctx.is_root() && !ctx.sim.state.access.check_perm_modify(&who, Some(&path)) {
            let extra = if path.starts_with("/vms/") {
                "VM.Allocate"
            } else {
                "Datastore.Allocate"
            };
            return Err(fail(format!(
                "Permission check failed ({path}, Permissions.Modify|{extra})"
            )));
        }
    }
    let comment = ctx.params.str("comment");
    let delete = ctx.params.flag("delete");
    let allow_move = ctx.params.flag("allow-move");
    let access = &mut ctx.sim.state.access;
    let mut updated = access.clone();
    updated
        .pool_modify(&name, comment.as_deref())
        .and_then(|()| updated.pool_update_members(&name, &vms, &stores, delete, allow_move))
        .map_err(|e| fail(e.to_string()))?;
    *access = updated;
    ctx.sim.dirty = true;
    Ok(Value::Null.into())
}

/// `DELETE /pools` and `DELETE /pools/{poolid}`: only empty pools.
fn delete_pool(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let name = ctx.param("poolid")?;
    ctx.sim
        .state
        .access
        .pool_delete(&name)
        .map_err(|e| ApiError::internal(format!("delete pool failed: {e}")))?;
    ctx.sim.dirty = true;
    Ok(Value::Null.into())
}
