//! The request pipeline in PVE's order: request-level checks, 401 (authentication and CSRF),
//! 501 (unknown path or method), 403 (the method's permission spec), node lookup, 400
//! (parameter validation), then the handler.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Response};
use serde_json::Value;

use crate::auth::{self, Credentials};
use crate::error::ApiError;
use crate::faults::FaultKind;
use crate::response;
use crate::router::{Caller, Ctx, Router, substitute};
use crate::state::Sim;

/// Largest accepted POST/PUT body (PVE: 512 KiB).
const MAX_BODY: usize = 512 * 1024;

/// What every request handler shares.
pub struct Shared {
    /// The simulator.
    pub sim: Mutex<Sim>,
    /// The route table.
    pub router: Router,
    /// Wakes the persister.
    pub persist_notify: tokio::sync::Notify,
    /// The nodes' API worker pools (used only under the capacity model).
    pub workers: crate::capacity::workers::WorkerPools,
}

impl Shared {
    /// Locks the simulator (recovering from a poisoned lock: the state stays usable).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Sim> {
        self.sim.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The axum entry point for every request.
pub async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE") {
        return response::bare(501, &format!("method '{method}' not available"));
    }
    let chunked = parts
        .headers
        .get("transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return response::bare(501, "chunked transfer encoding not supported");
    }
    let body = match axum::body::to_bytes(body, MAX_BODY + 1).await {
        Ok(b) if b.len() <= MAX_BODY => b,
        _ => return response::bare(501, "for data too large"),
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    if let Some(rest) = path.strip_prefix("/_sim") {
        return crate::sim_api::handle(&shared, &method, rest, &body);
    }
    let (api_path, extjs) = if let Some(p) = path.strip_prefix("/api2/json") {
        (p, false)
    } else if let Some(p) = path.strip_prefix("/api2/extjs") {
        (p, true)
    } else {
        return response::bare(501, "no such uri");
    };
    let api_path = if api_path.is_empty() { "/" } else { api_path };
    let resp = api(&shared, &method, api_path, &query, &parts.headers, body).await;
    let resp = if extjs { to_extjs(resp).await } else { resp };
    let accept = parts
        .headers
        .get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    response::compress(resp, accept).await
}

/// Re-formats an answer for `/api2/extjs`: handler errors become HTTP 200 with
/// `{"success":0,"status":N,"message":...}`; authentication failures and proxy errors stay as
/// they are.
async fn to_extjs(resp: Response<Body>) -> Response<Body> {
    let status = resp.status().as_u16();
    if status == 401
        || status >= 595
        || resp
            .extensions()
            .get::<response::DropConnection>()
            .is_some()
    {
        return resp;
    }
    let reason = resp
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let mut out = serde_json::Map::new();
    if status == 200 {
        out.insert("success".into(), Value::from(1));
        out.insert(
            "data".into(),
            body.get("data").cloned().unwrap_or(Value::Null),
        );
        if let Some(total) = body.get("total") {
            out.insert("total".into(), total.clone());
        }
    } else {
        out.insert("success".into(), Value::from(0));
        out.insert("status".into(), Value::from(status));
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{reason}\n"));
        out.insert("message".into(), Value::String(message));
        out.insert("data".into(), Value::Null);
        if let Some(errors) = body.get("errors") {
            out.insert("errors".into(), errors.clone());
        }
    }
    response::plain_json(200, &Value::Object(out))
}

/// pveproxy's answer when the daemon did not answer in time: `596 Connection timed out`, empty
/// body (wire-behaviour.md §3).
fn proxy_timeout(shared: &Shared) -> Response<Body> {
    shared.lock().stats.count_status(596);
    response::bare(596, crate::capacity::workers::PROXY_TIMEOUT_REASON)
}

fn parse_params(
    method: &str,
    headers: &HeaderMap,
    query: &str,
    body: &Bytes,
) -> Result<BTreeMap<String, Value>, Box<Response<Body>>> {
    let mut params = BTreeMap::new();
    if matches!(method, "POST" | "PUT") && !body.is_empty() {
        let ctype = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/x-www-form-urlencoded");
        let mime = ctype
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/x-www-form-urlencoded" => {
                for (k, v) in form_urlencoded::parse(body) {
                    params.insert(k.to_string(), Value::String(v.to_string()));
                }
            }
            "application/json" => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => params.extend(map),
                _ => {
                    return Err(Box::new(response::error(
                        &ApiError::new(400, "Parameter verification failed.\n"),
                        true,
                    )));
                }
            },
            _ => {
                return Err(Box::new(response::bare(
                    506,
                    &format!("upload 'Content-Type '{ctype}' not implemented"),
                )));
            }
        }
    }
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        params.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(params)
}

async fn api(
    shared: &Arc<Shared>,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let found = shared
        .router
        .find(method, path)
        .map(|(r, caps)| (r.clone(), caps));
    let creds = Credentials::from_headers(headers);
    let csrf = headers
        .get("csrfpreventiontoken")
        .and_then(|v| v.to_str().ok());
    let world = found
        .as_ref()
        .is_some_and(|(r, _)| matches!(r.perm, crate::router::Perm::World));

    // 401: authentication, before anything else.
    let (auth, json_message, delay_ms) = {
        let sim = shared.lock();
        let now = sim.now_ms() / 1000;
        let auth = if world {
            Ok(None)
        } else {
            auth::authenticate(&sim.state, &creds, method, csrf, now)
                .map(Some)
                .map_err(|f| f.reason(sim.state.config.auth.error_style))
        };
        (
            auth,
            sim.state.config.json_error_message,
            sim.state.config.auth.failure_delay_ms,
        )
    };
    let caller = match auth {
        Ok(c) => c,
        Err(reason) => {
            {
                let mut sim = shared.lock();
                sim.note_request(&format!("{method} {path}"), "-");
                sim.stats.count_status(401);
            }
            if delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            return response::bare(401, &reason);
        }
    };
    let caller_name = caller
        .as_ref()
        .map(Caller::auth_id)
        .unwrap_or_else(|| "-".to_string());

    // 501: unknown path or method.
    let Some((route, caps)) = found else {
        let mut sim = shared.lock();
        sim.note_request(&format!("{method} {path}"), &caller_name);
        sim.stats.count_status(501);
        return response::error(
            &ApiError::new(501, format!("Method '{method} {path}' not implemented\n")),
            json_message,
        );
    };
    if matches!(method, "GET" | "DELETE") && !body.is_empty() {
        return response::bare(501, &format!("Unexpected content for method '{method}'"));
    }
    if caller.as_ref().is_some_and(|c| c.tokenid.is_some()) && !route.allow_token {
        return response::error(
            &ApiError::perm(format!(
                "URI '{path}' not available with API token, need proper ticket.\n"
            )),
            json_message,
        );
    }
    if world && matches!(creds, Credentials::Token(_)) && !route.allow_token {
        return response::error(
            &ApiError::perm(format!(
                "URI '{path}' not available with API token, need proper ticket.\n"
            )),
            json_message,
        );
    }
    let mut raw = match parse_params(method, headers, query, &body) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    raw.extend(caps);

    // Faults, decided per endpoint template.
    let endpoint = format!("{method} {}", route.path);
    let faults = {
        let mut sim = shared.lock();
        sim.note_request(&endpoint, &caller_name);
        let faults = sim.faults.decide(method, route.path);
        sim.stats.faults_injected += faults.len() as u64;
        faults
    };
    let mut task_failure = None;
    let mut lock_timeout_in_task = false;
    let mut answer_delay_ms = 0u64;
    let (version, capacity) = {
        let sim = shared.lock();
        let config = &sim.state.config;
        (config.pve_version, config.capacity.clone())
    };
    let count_status = |code: u16| shared.lock().stats.count_status(code);
    for fault in &faults {
        match fault {
            FaultKind::Latency { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
            FaultKind::LatencyAfter { ms } => answer_delay_ms += ms,
            FaultKind::Drop => return response::dropped(),
            FaultKind::Proxy { status, reason } => {
                count_status(*status);
                return response::bare(*status, reason);
            }
            FaultKind::Error { status, message } => {
                count_status(*status);
                return response::error(
                    &ApiError::new(*status, format!("{message}\n")),
                    json_message,
                );
            }
            FaultKind::LockTimeout if crate::qemu::flock_in_task(version, method, route.path) => {
                lock_timeout_in_task = true;
            }
            FaultKind::LockTimeout => {
                count_status(500);
                let file = substitute("{vmid}", &raw).replace("{vmid}", "0");
                return response::error(
                    &ApiError::internal(format!(
                        "can't lock file '/var/lock/qemu-server/lock-{file}.conf' - got timeout"
                    )),
                    json_message,
                );
            }
            FaultKind::TaskFailure { message } => task_failure = Some(message.clone()),
        }
    }

    // Under the capacity model the request waits for a worker of its node's pool first.
    let worker = match &capacity {
        Some(model) => {
            match crate::capacity::workers::enter(shared, model, method, route.path, &raw).await {
                Some(worker) => Some(worker),
                None => return proxy_timeout(shared),
            }
        }
        None => None,
    };
    let mut waited_ms = 0u64;
    let mut flock_timed_out = false;
    let result = loop {
        let (result, lock_wait) = {
            let mut guard = shared.lock();
            let sim = &mut *guard;
            let now_ms = sim.now_ms();
            sim.advance(now_ms);
            let tasks_before = sim.state.tasks.len();
            // The permission stage sees the raw parameters (PVE checks permissions before it
            // verifies parameters).
            let unvalidated = crate::params::Params(raw.clone());
            sim.lock_timeout_fault = lock_timeout_in_task;
            let result = (|| {
                let ctx = Ctx {
                    sim: &mut *sim,
                    caller: caller.as_ref(),
                    params: &unvalidated,
                    now_ms,
                };
                // 403: the method's permission spec, before parameter validation.
                route.perm.check(&ctx, &raw)?;
                // A node that is not part of the cluster cannot be proxied to.
                if let Some(Value::String(node)) = raw.get("node")
                    && route.path.contains("{node}")
                {
                    match ctx.sim.state.config.node(node) {
                        None => {
                            return Err(ApiError::internal(format!(
                                "hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"
                            )));
                        }
                        Some(n) if !n.online => return Err(ApiError::new(595, "No route to host")),
                        Some(_) => {}
                    }
                }
                // 400: parameter validation, with the simulated version's schema.
                let version = ctx.sim.state.config.pve_version;
                let params = match route.params_for(version) {
                    Some(table) => crate::params::validate_for(version, table, raw.clone())?,
                    None => crate::params::Params(raw.clone()),
                };
                let mut ctx = Ctx {
                    sim: &mut *sim,
                    caller: caller.as_ref(),
                    params: &params,
                    now_ms,
                };
                // A bug in a handler answers 500 instead of dropping the connection.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (route.handler)(&mut ctx)))
                    .unwrap_or_else(|_| {
                        tracing::error!(endpoint = route.path, "handler panicked");
                        Err(ApiError::internal(
                            "pve-sim: internal error (handler panicked)",
                        ))
                    })
            })();
            sim.lock_timeout_fault = false;
            let started = &sim.state.tasks[tasks_before.min(sim.state.tasks.len())..];
            let new_tasks: Vec<String> = started.iter().map(|t| t.kind.clone()).collect();
            let nodes: Vec<String> = started.iter().map(|t| t.node.clone()).collect();
            for kind in &new_tasks {
                sim.stats.count_task(kind);
            }
            for node in &nodes {
                let running = sim
                    .state
                    .running
                    .iter()
                    .filter(|r| r.upid.split(':').nth(1) == Some(node.as_str()))
                    .count() as u64;
                sim.stats.note_tasks_in_flight(node, running);
            }
            if let (Some(msg), Ok(reply)) = (&task_failure, &result)
                && let Value::String(upid) = &reply.data
                && let Some(task) = sim.state.task_mut(upid)
            {
                task.injected_failure = Some(msg.clone());
            }
            if method != "GET" || !new_tasks.is_empty() {
                sim.dirty = true;
            }
            let lock_wait = sim.lock_wait.take().map(|until| {
                (
                    until.saturating_sub(now_ms),
                    sim.state.config.vm_flock_timeout_ms(),
                )
            });
            if lock_wait.is_none() {
                sim.stats.count_status(match &result {
                    Ok(_) => 200,
                    Err(e) => e.code,
                });
            }
            (result, lock_wait)
        };
        // A VM's config lock is held by a running task: wait for it like `lock_file_full`,
        // then run again, or fail with the lock timeout.
        match lock_wait {
            Some((remaining, timeout)) if waited_ms + remaining <= timeout => {
                tokio::time::sleep(Duration::from_millis(remaining + 1)).await;
                waited_ms += remaining + 1;
            }
            Some((_, timeout)) => {
                tokio::time::sleep(Duration::from_millis(timeout.saturating_sub(waited_ms))).await;
                shared.lock().stats.count_status(500);
                flock_timed_out = true;
                waited_ms = timeout;
                break result;
            }
            None => break result,
        }
    };
    if capacity.is_some() && waited_ms > 0 {
        let mut sim = shared.lock();
        let counters = sim.stats.capacity_mut();
        counters.lock_wait("vm_config", waited_ms, flock_timed_out);
    }
    if method != "GET" {
        crate::storage_files::spawn_pending(shared);
        shared.persist_notify.notify_one();
    }
    if let (Some(model), Some(worker)) = (&capacity, worker)
        && !worker.finish(shared, model).await
    {
        let counted = result.as_ref().map_or_else(|e| e.code, |_| 200);
        shared.lock().stats.uncount_status(counted);
        return proxy_timeout(shared);
    }
    // Done, and the answer is slow to come back (a client that gives up meanwhile leaves the
    // work done behind it).
    if answer_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(answer_delay_ms)).await;
    }
    // Never log parameters: they may carry passwords and token secrets.
    tracing::debug!(
        method,
        endpoint = route.path,
        caller = %caller_name,
        status = match &result {
            Ok(_) => 200,
            Err(e) => e.code,
        },
        "api request"
    );
    match result {
        Ok(reply) => response::ok(reply),
        Err(err) => {
            if err.code == 401 && delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            }
            if (595..=599).contains(&err.code) {
                return response::bare(err.code, err.reason());
            }
            response::error(&err, json_message)
        }
    }
}
