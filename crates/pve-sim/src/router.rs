//! The route table: (method, path template, permission spec, handler). Any module can add
//! routes; the access-control module contributes its `/access/*` routes through
//! `crate::access::routes()`. Parameter tables are looked up by (method, template) in
//! [`crate::params::table`], one per simulated version ([`Route::params_for`]).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ApiError;
use crate::params::{Param, Params};
use crate::state::Sim;
use crate::version::PveVersion;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `user@realm`.
    pub userid: String,
    /// The token name when authenticated with an API token.
    pub tokenid: Option<String>,
}

impl Caller {
    /// `user@realm` or `user@realm!token`: the identity permissions are evaluated for.
    pub fn auth_id(&self) -> String {
        match &self.tokenid {
            Some(t) => format!("{}!{t}", self.userid),
            None => self.userid.clone(),
        }
    }

    /// Whether this is `root@pam` itself (not one of its tokens), which may use root-only options.
    pub fn is_root(&self) -> bool {
        self.userid == "root@pam" && self.tokenid.is_none()
    }
}

/// A handler's successful result.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The `data` of the envelope.
    pub data: Value,
    /// A top-level `total` (task list, task log).
    pub total: Option<u64>,
    /// Already serialised JSON used as `data` instead of [`Reply::data`] (big lists, built
    /// without an intermediate `Value`).
    pub raw: Option<String>,
}

impl Reply {
    /// `data` with a top-level `total`.
    pub fn with_total(data: Value, total: u64) -> Self {
        Self {
            data,
            total: Some(total),
            raw: None,
        }
    }

    /// Pre-serialised JSON as `data`.
    pub fn raw(json: String) -> Self {
        Self {
            data: Value::Null,
            total: None,
            raw: Some(json),
        }
    }
}

impl From<Value> for Reply {
    fn from(data: Value) -> Self {
        Self {
            data,
            total: None,
            raw: None,
        }
    }
}

/// What a handler gets.
pub struct Ctx<'a> {
    /// The whole simulator state (locked for the duration of the handler).
    pub sim: &'a mut Sim,
    /// The authenticated caller (`None` only for `World` routes).
    pub caller: Option<&'a Caller>,
    /// Validated parameters (path, query and body).
    pub params: &'a Params,
    /// The simulator clock, ms since the epoch.
    pub now_ms: u64,
}

impl Ctx<'_> {
    /// The caller's auth id (`""` when unauthenticated).
    pub fn auth_id(&self) -> String {
        self.caller.map(Caller::auth_id).unwrap_or_default()
    }

    /// Whether the caller is `root@pam`.
    pub fn is_root(&self) -> bool {
        self.caller.is_some_and(Caller::is_root)
    }

    /// Whether the caller holds `privs` (all, or any when `any`) at `path`.
    pub fn check(&self, path: &str, privs: &[&str], any: bool) -> bool {
        // root@pam holds every privilege everywhere; skip computing the set.
        self.caller.is_some_and(|c| {
            c.is_root() || self.sim.state.access.check(&c.auth_id(), path, privs, any)
        })
    }

    /// Like [`Ctx::check`], failing with PVE's 403 text.
    pub fn require(&self, path: &str, privs: &[&str], any: bool) -> Result<(), ApiError> {
        require(self, path, privs, any)
    }

    /// A string parameter that the schema makes required (path parameters).
    pub fn param(&self, name: &str) -> Result<String, ApiError> {
        self.params
            .str(name)
            .ok_or_else(|| ApiError::param(name, "property is missing and it is not optional"))
    }

    /// The `vmid` parameter.
    pub fn vmid(&self) -> Result<u32, ApiError> {
        self.params
            .int("vmid")
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| ApiError::param("vmid", "property is missing and it is not optional"))
    }

    /// Seconds since the epoch.
    pub fn now_secs(&self) -> u64 {
        self.now_ms / 1000
    }
}

fn require(ctx: &Ctx<'_>, path: &str, privs: &[&str], any: bool) -> Result<(), ApiError> {
    let Some(caller) = ctx.caller else {
        return Err(ApiError::perm_bare());
    };
    if caller.is_root()
        || ctx
            .sim
            .state
            .access
            .check(&caller.auth_id(), path, privs, any)
    {
        return Ok(());
    }
    let have = ctx.sim.state.access.permissions(&caller.auth_id(), path);
    if any {
        if privs.iter().any(|p| have.contains(*p)) {
            return Ok(());
        }
        return Err(ApiError::perm(format!("{path}, {}", privs.join("|"))));
    }
    for p in privs {
        if !have.contains(*p) {
            return Err(ApiError::perm(format!("{path}, {p}")));
        }
    }
    Ok(())
}

/// A method's permission spec, checked before parameter validation.
#[derive(Debug, Clone, Copy)]
pub enum Perm {
    /// `user => 'world'`: no authentication.
    World,
    /// `user => 'all'`: any authenticated user or token; the handler filters or checks.
    All,
    /// `['perm', path, privs, any => ..]`; `{param}` in the path is substituted.
    Check {
        /// ACL path template (`/vms/{vmid}`).
        path: &'static str,
        /// Privileges.
        privs: &'static [&'static str],
        /// Any instead of all.
        any: bool,
    },
    /// Only `root@pam`.
    RootOnly,
    /// A permission spec the variants above cannot express (`userid-param`, `userid-group`,
    /// `perm-modify`, ...): a check that runs at the same stage, before parameter validation,
    /// with `ctx.params` holding the raw (unvalidated) parameters.
    Custom(PermCheck),
    /// A spec that changed between Proxmox VE versions (the guest agent's `VM.Monitor` of 8.4
    /// became `VM.GuestAgent.*` in 9.0.3): the one of the simulator's configured version.
    ByVersion {
        /// The PVE 8.4 spec.
        pve8: &'static Perm,
        /// The PVE 9.1 spec.
        pve9: &'static Perm,
    },
}

/// A permission check of [`Perm::Custom`].
pub type PermCheck = fn(&Ctx<'_>) -> Result<(), ApiError>;

impl Perm {
    /// The spec that applies in `version` (itself, unless it is [`Perm::ByVersion`]).
    pub fn of_version(&self, version: PveVersion) -> &Perm {
        match (self, version) {
            (Perm::ByVersion { pve8, .. }, PveVersion::Pve8_4) => pve8.of_version(version),
            (Perm::ByVersion { pve9, .. }, PveVersion::Pve9_1) => pve9.of_version(version),
            (other, _) => other,
        }
    }

    /// Checks the spec for the caller with the raw (unvalidated) parameters.
    pub fn check(&self, ctx: &Ctx<'_>, raw: &BTreeMap<String, Value>) -> Result<(), ApiError> {
        match self.of_version(ctx.sim.state.config.pve_version) {
            Perm::ByVersion { .. } => Err(ApiError::perm_bare()),
            Perm::World | Perm::All => Ok(()),
            Perm::Custom(check) => check(ctx),
            Perm::RootOnly => {
                if ctx.is_root() {
                    Ok(())
                } else {
                    Err(ApiError::perm_bare())
                }
            }
            Perm::Check { path, privs, any } => {
                let path = substitute(path, raw);
                require(ctx, &path, privs, *any)
            }
        }
    }
}

/// Replaces `{name}` in `template` by the parameter's value.
pub fn substitute(template: &str, params: &BTreeMap<String, Value>) -> String {
    let mut out = template.to_string();
    for (k, v) in params {
        let pat = format!("{{{k}}}");
        if out.contains(&pat) {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out = out.replace(&pat, &text);
        }
    }
    out
}

/// A request handler. It runs with the simulator state locked.
pub type Handler = fn(&mut Ctx<'_>) -> Result<Reply, ApiError>;

/// One API method.
#[derive(Clone)]
pub struct Route {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// Path template below `/api2/json`, as in the schema (`/nodes/{node}/qemu`).
    pub path: &'static str,
    /// Method-level permission spec.
    pub perm: Perm,
    /// Whether API tokens may call it (`allowtoken`).
    pub allow_token: bool,
    /// The handler.
    pub handler: Handler,
    /// Parameter rules of the PVE 8.4 schema; `None` accepts any parameters.
    pub params: Option<&'static [Param]>,
    /// Parameter rules of the PVE 9.1 schema; `None` accepts any parameters.
    pub params_9_1: Option<&'static [Param]>,
}

impl Route {
    /// A route whose parameter rules come from the generated tables (tokens allowed).
    pub fn new(method: &'static str, path: &'static str, perm: Perm, handler: Handler) -> Self {
        Self {
            method,
            path,
            perm,
            allow_token: true,
            handler,
            params: crate::params::table(PveVersion::Pve8_4, method, path),
            params_9_1: crate::params::table(PveVersion::Pve9_1, method, path),
        }
    }

    /// The parameter rules of the simulated `version`; `None` accepts any parameters.
    pub fn params_for(&self, version: PveVersion) -> Option<&'static [Param]> {
        match version {
            PveVersion::Pve8_4 => self.params,
            PveVersion::Pve9_1 => self.params_9_1,
        }
    }

    /// Forbids API tokens (`allowtoken => 0`).
    pub fn no_token(mut self) -> Self {
        self.allow_token = false;
        self
    }

    /// Matches a concrete path; returns the captured path parameters.
    pub fn matches(&self, path: &str) -> Option<BTreeMap<String, Value>> {
        match_template(self.path, path)
    }
}

/// Matches `path` (already without `/api2/json`) against `template`.
pub fn match_template(template: &str, path: &str) -> Option<BTreeMap<String, Value>> {
    let t: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    let p: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if t.len() != p.len() {
        return None;
    }
    let mut caps = BTreeMap::new();
    for (ts, ps) in t.iter().zip(p.iter()) {
        if let Some(name) = ts.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let decoded = percent_encoding::percent_decode_str(ps)
                .decode_utf8_lossy()
                .to_string();
            caps.insert(name.to_string(), Value::String(decoded));
        } else if ts != ps {
            return None;
        }
    }
    Some(caps)
}

/// The route table.
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// All routes of the simulator: its own and the access-control module's. When two routes
    /// have the same method and template, the first one registered wins.
    pub fn build() -> Self {
        let mut routes = crate::api::routes();
        for r in crate::access::routes() {
            if !routes
                .iter()
                .any(|x| x.method == r.method && x.path == r.path)
            {
                routes.push(r);
            }
        }
        Self { routes }
    }

    /// The routes.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Finds the route for `method path`; also tells whether the path exists with another method.
    pub fn find(&self, method: &str, path: &str) -> Option<(&Route, BTreeMap<String, Value>)> {
        self.routes
            .iter()
            .filter(|r| r.method == method)
            .find_map(|r| r.matches(path).map(|caps| (r, caps)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_version_spec_resolves_to_the_spec_of_each_version() {
        static PVE8: Perm = Perm::RootOnly;
        static PVE9: Perm = Perm::All;
        let perm = Perm::ByVersion {
            pve8: &PVE8,
            pve9: &PVE9,
        };
        assert!(matches!(
            perm.of_version(PveVersion::Pve8_4),
            Perm::RootOnly
        ));
        assert!(matches!(perm.of_version(PveVersion::Pve9_1), Perm::All));
        assert!(matches!(
            Perm::World.of_version(PveVersion::Pve9_1),
            Perm::World
        ));
    }

    #[test]
    fn template_captures_and_decodes() {
        let caps = match_template(
            "/nodes/{node}/tasks/{upid}/status",
            "/nodes/pve/tasks/UPID%3Apve%3A1/status",
        )
        .expect("matches");
        assert_eq!(caps.get("upid"), Some(&Value::String("UPID:pve:1".into())));
        assert!(match_template("/nodes/{node}/qemu", "/nodes/pve/lxc").is_none());
    }
}
