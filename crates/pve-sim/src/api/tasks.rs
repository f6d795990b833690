//! `/nodes/{node}/tasks`: list, status, log, stop. Only the owner or a holder of Sys.Audit on
//! the node may read a task (Sys.Modify to stop someone else's).

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::router::{Ctx, Perm, Reply, Route};
use crate::tasks::{Task, decode_upid};

/// The task routes.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/nodes/{node}/tasks", Perm::All, list),
        Route::new("GET", "/nodes/{node}/tasks/{upid}", Perm::All, |ctx| {
            find(ctx, "Sys.Audit")?;
            Ok(json!([{ "name": "log" }, { "name": "status" }]).into())
        }),
        Route::new(
            "GET",
            "/nodes/{node}/tasks/{upid}/status",
            Perm::All,
            |ctx| Ok(find(ctx, "Sys.Audit")?.status_json().into()),
        ),
        Route::new("GET", "/nodes/{node}/tasks/{upid}/log", Perm::All, log),
        Route::new("DELETE", "/nodes/{node}/tasks/{upid}", Perm::All, stop),
        Route::new("GET", "/cluster/tasks", Perm::All, cluster_tasks),
    ]
}

/// How many finished tasks `/cluster/tasks` keeps listing (PVE lists the running tasks and the
/// recently finished ones that pvestatd still has).
const RECENT_FINISHED: usize = 50;

/// `GET /cluster/tasks`: the running tasks and the most recent finished ones of every node, that
/// the caller may see (own tasks, or Sys.Audit on the node). One call gives a task tracker the
/// state of all tasks in flight.
fn cluster_tasks(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let auth_id = ctx.auth_id();
    let mut finished = 0;
    let out: Vec<Value> = ctx
        .sim
        .state
        .tasks
        .iter()
        .rev()
        .filter(|t| {
            t.running() || {
                finished += 1;
                finished <= RECENT_FINISHED
            }
        })
        .filter(|t| {
            t.owned_by(&auth_id) || ctx.check(&format!("/nodes/{}", t.node), &["Sys.Audit"], false)
        })
        .map(|t| {
            let mut v = t.list_json();
            if !t.running() {
                v["saved"] = json!("1");
            }
            v
        })
        .collect();
    Ok(Value::Array(out).into())
}

/// The task of the request, if the caller may see it (`priv` on the node otherwise).
fn find(ctx: &Ctx<'_>, privilege: &str) -> Result<Task, ApiError> {
    let upid = ctx.param("upid")?;
    let node = ctx.param("node")?;
    if decode_upid(&upid).is_none() {
        return Err(ApiError::param("upid", "unable to parse worker upid"));
    }
    let task = ctx
        .sim
        .state
        .task(&upid)
        .filter(|t| t.node == node)
        .cloned()
        .ok_or_else(|| ApiError::param("upid", "no such task"))?;
    if !task.owned_by(&ctx.auth_id()) {
        ctx.require(&format!("/nodes/{node}"), &[privilege], false)?;
    }
    Ok(task)
}

fn list(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let start = ctx.params.int("start").unwrap_or(0).max(0) as usize;
    let limit = ctx.params.int("limit").unwrap_or(50).max(0) as usize;
    let source = ctx.params.str("source").unwrap_or_else(|| "archive".into());
    let errors_only = ctx.params.flag("errors");
    let userfilter = ctx.params.str("userfilter");
    let typefilter = ctx.params.str("typefilter");
    let vmid = ctx.params.int("vmid").map(|v| v.to_string());
    let since = ctx.params.int("since");
    let until = ctx.params.int("until");
    let statusfilter: Option<Vec<String>> = ctx.params.str("statusfilter").map(|s| {
        crate::params::split_list(&s)
            .map(str::to_lowercase)
            .collect()
    });
    let auth_id = ctx.auth_id();
    let audit = ctx.check(&format!("/nodes/{node}"), &["Sys.Audit"], false);
    let matching: Vec<&Task> = ctx
        .sim
        .state
        .tasks
        .iter()
        .rev()
        .filter(|t| t.node == node)
        .filter(|t| audit || t.owned_by(&auth_id))
        .filter(|t| match source.as_str() {
            "active" => t.running(),
            "all" => true,
            _ => !t.running(),
        })
        .filter(|t| !errors_only || t.exitstatus.as_deref().is_some_and(|e| e != "OK"))
        .filter(|t| {
            userfilter
                .as_ref()
                .is_none_or(|u| t.user.contains(u.as_str()))
        })
        .filter(|t| typefilter.as_ref().is_none_or(|ty| &t.kind == ty))
        .filter(|t| vmid.as_ref().is_none_or(|id| &t.id == id))
        .filter(|t| since.is_none_or(|s| t.starttime as i64 >= s))
        .filter(|t| until.is_none_or(|u| t.starttime as i64 <= u))
        .filter(|t| {
            statusfilter.as_ref().is_none_or(|f| {
                let st = match t.exitstatus.as_deref() {
                    None => "running",
                    Some("OK") => "ok",
                    Some(e) if e.starts_with("WARNINGS") => "warning",
                    Some(_) => "error",
                };
                f.iter().any(|x| x == st)
            })
        })
        .collect();
    let total = matching.len() as u64;
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|t| t.list_json())
        .collect();
    Ok(Reply::with_total(Value::Array(page), total))
}

fn log(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let task = find(ctx, "Sys.Audit")?;
    let start = ctx.params.int("start").unwrap_or(0).max(0) as usize;
    let limit = ctx.params.int("limit").unwrap_or(50).max(0) as usize;
    let total = task.log.len() as u64;
    if task.log.is_empty() {
        return Ok(Reply::with_total(json!([{ "n": 1, "t": "no content" }]), 1));
    }
    let take = if limit == 0 { usize::MAX } else { limit };
    let lines: Vec<Value> = task
        .log
        .iter()
        .enumerate()
        .skip(start)
        .take(take)
        .map(|(i, t)| json!({ "n": i + 1, "t": t }))
        .collect();
    Ok(Reply::with_total(Value::Array(lines), total))
}

fn stop(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let task = find(ctx, "Sys.Modify")?;
    if task.running() {
        let now = ctx.now_secs();
        crate::qemu::effects::fail_cleanup(&mut ctx.sim.state, &task.action);
        ctx.sim.state.running.retain(|r| r.upid != task.upid);
        if let Some(t) = ctx.sim.state.task_mut(&task.upid) {
            t.finish("interrupted by signal", now);
        }
    }
    Ok(Value::Null.into())
}
