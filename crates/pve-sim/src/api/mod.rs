//! The simulator's own API routes (everything but `/access/*` other than the ticket).

mod cluster;
mod nodes;
pub(crate) mod storage;
mod tasks;

pub(crate) use cluster::storage_resource;

use serde_json::{Value, json};

use crate::router::{Perm, Route};

/// All routes of this crate except the access-control module's.
pub fn routes() -> Vec<Route> {
    let mut r = vec![
        Route::new("GET", "/version", Perm::All, |ctx| {
            let v = &ctx.sim.state.config.version_info();
            Ok(json!({ "version": v.version, "release": v.release, "repoid": v.repoid }).into())
        }),
        Route::new("GET", "/", Perm::All, |_| {
            let dirs = ["version", "cluster", "nodes", "storage", "access", "pools"];
            Ok(Value::Array(dirs.iter().map(|d| json!({ "subdir": d })).collect()).into())
        }),
    ];
    r.extend(crate::auth::routes());
    r.extend(nodes::routes());
    r.extend(storage::routes());
    r.extend(cluster::routes());
    r.extend(tasks::routes());
    r.extend(crate::qemu::routes());
    r.extend(crate::storage_files::routes());
    r
}
