//! Storage definitions (`/storage`, datacenter level) and one storage's status on a node.

use serde_json::{Value, json};

use crate::config::StorageConfig;
use crate::error::ApiError;
use crate::router::{Ctx, Perm, Reply, Route};

const AUDIT_OR_SPACE: &[&str] = &["Datastore.Audit", "Datastore.AllocateSpace"];

/// The storage routes.
pub fn routes() -> Vec<Route> {
    let on_storage = Perm::Check {
        path: "/storage/{storage}",
        privs: AUDIT_OR_SPACE,
        any: true,
    };
    vec![
        Route::new("GET", "/storage", Perm::All, list),
        Route::new(
            "GET",
            "/storage/{storage}",
            Perm::Check {
                path: "/storage/{storage}",
                privs: &["Datastore.Allocate"],
                any: false,
            },
            read,
        ),
        Route::new(
            "GET",
            "/nodes/{node}/storage/{storage}",
            on_storage,
            |ctx| {
                storage_on_node(ctx)?;
                let dirs = [
                    "content",
                    "download-url",
                    "file-restore",
                    "import-metadata",
                    "prunebackups",
                    "rrd",
                    "rrddata",
                    "status",
                    "upload",
                ];
                Ok(Value::Array(dirs.iter().map(|d| json!({ "subdir": d })).collect()).into())
            },
        ),
        Route::new(
            "GET",
            "/nodes/{node}/storage/{storage}/status",
            on_storage,
            status,
        ),
    ]
}

/// A storage's definition as `storage.cfg` holds it.
fn definition(s: &StorageConfig) -> Value {
    let mut v = json!({
        "storage": s.id,
        "type": s.r#type,
        "content": s.content.join(","),
        "digest": "0000000000000000000000000000000000000000",
    });
    if s.shared {
        v["shared"] = json!(1);
    }
    if let Some(nodes) = &s.nodes {
        v["nodes"] = json!(nodes.join(","));
    }
    match s.r#type.as_str() {
        "dir" => {
            v["path"] = json!(if s.id == "local" {
                "/var/lib/vz".to_string()
            } else {
                format!("/mnt/{}", s.id)
            })
        }
        "lvmthin" => {
            v["vgname"] = json!("pve");
            v["thinpool"] = json!("data");
        }
        _ => {}
    }
    v
}

fn list(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let filter = ctx.params.str("type");
    let out: Vec<Value> = ctx
        .sim
        .state
        .config
        .storages
        .iter()
        .filter(|s| filter.as_ref().is_none_or(|t| t == &s.r#type))
        .filter(|s| ctx.check(&format!("/storage/{}", s.id), AUDIT_OR_SPACE, true))
        .map(definition)
        .collect();
    Ok(Value::Array(out).into())
}

fn read(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let id = ctx.param("storage")?;
    Ok(definition(known_storage(&ctx.sim.state.config, &id)?).into())
}

/// Storage `id` of `config`, or PVE's error for a storage that does not exist.
pub(crate) fn known_storage<'c>(
    config: &'c crate::config::ClusterConfig,
    id: &str,
) -> Result<&'c StorageConfig, ApiError> {
    config
        .storage(id)
        .ok_or_else(|| ApiError::internal(format!("storage '{id}' does not exist")))
}

fn storage_on_node(ctx: &Ctx<'_>) -> Result<StorageConfig, ApiError> {
    let node = ctx.param("node")?;
    let id = ctx.param("storage")?;
    ctx.sim
        .state
        .config
        .storage(&id)
        .filter(|s| s.on_node(&node))
        .cloned()
        .ok_or_else(|| ApiError::internal(format!("storage '{id}' does not exist")))
}

fn status(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let s = storage_on_node(ctx)?;
    let node = ctx.param("node")?;
    let used = ctx.sim.state.storage_used(&s.id, &node);
    let total = s.capacity.0;
    Ok(json!({
        "type": s.r#type,
        "content": s.content.join(","),
        "enabled": 1,
        "active": 1,
        "shared": u8::from(s.shared),
        "total": total,
        "used": used,
        "avail": total.saturating_sub(used),
    })
    .into())
}
