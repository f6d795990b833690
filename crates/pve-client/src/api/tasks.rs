//! Tasks: status, log, list, and [`PveClient::wait_task`], which polls with backoff until the
//! task stops and returns its exit status (on failure, [`PveError::TaskFailed`] with the tail of
//! the task log).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::{validate_node, validate_vmid};
use crate::client::PveClient;
use crate::error::{PveError, Result};
use crate::request::{ApiRequest, Method, Params};
use crate::task::{ExitStatus, TaskListEntry, TaskLogLine, TaskStatus, Upid};

/// How [`PveClient::wait_task`] polls.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// The first poll delay.
    pub initial_interval: Duration,
    /// The longest poll delay (the delay grows by half each poll).
    pub max_interval: Duration,
    /// Give up (with [`PveError::Timeout`]) after this long; `None` waits forever.
    pub timeout: Option<Duration>,
    /// How many log lines to attach to a failure.
    pub log_tail_lines: u32,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_millis(250),
            max_interval: Duration::from_secs(5),
            timeout: Some(Duration::from_secs(30 * 60)),
            log_tail_lines: 20,
        }
    }
}

/// The most lines [`PveClient::task_log_tail`] returns.
pub const MAX_LOG_TAIL_LINES: u32 = 50;
/// The longest task-log line kept in an excerpt, in characters (longer ones are cut, `…`).
pub const MAX_LOG_LINE_CHARS: usize = 512;
/// The most characters a task-log excerpt keeps in all (the newest lines are kept).
pub const MAX_LOG_TAIL_CHARS: usize = 8192;

/// The last `n` of `lines`, each cut at [`MAX_LOG_LINE_CHARS`], the oldest dropped while the
/// total exceeds [`MAX_LOG_TAIL_CHARS`].
fn excerpt_of(lines: impl Iterator<Item = String>, n: u64) -> Vec<String> {
    let mut kept: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut chars = 0usize;
    for line in lines {
        let line = crate::error::clip_to(&line, MAX_LOG_LINE_CHARS);
        chars += line.chars().count();
        kept.push_back(line);
        while kept.len() as u64 > n || (chars > MAX_LOG_TAIL_CHARS && kept.len() > 1) {
            if let Some(old) = kept.pop_front() {
                chars -= old.chars().count();
            }
        }
    }
    kept.into()
}

/// A page of a task log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLog {
    /// The lines.
    pub lines: Vec<TaskLogLine>,
    /// The total number of lines in the log.
    pub total: Option<u64>,
}

/// The page size of [`PveClient::task_states`]: enough for every task a controller runs on
/// a node in a few seconds, small enough to stay a few kilobytes.
const TASK_STATES_PAGE: u32 = 100;

/// Filters of `GET /nodes/{node}/tasks`.
#[derive(Debug, Clone, Default)]
pub struct TaskListQuery {
    /// Only tasks of this VMID.
    pub vmid: Option<u32>,
    /// Only tasks of this type (`qmcreate`, ...).
    pub typefilter: Option<String>,
    /// Only failed tasks.
    pub errors: Option<bool>,
    /// Only running tasks (`source=active`) or all (`source=all`).
    pub source: Option<TaskSource>,
    /// Maximum number of entries.
    pub limit: Option<u32>,
    /// Only tasks started since (unix seconds).
    pub since: Option<i64>,
    /// Only tasks whose user contains this (Proxmox matches a substring), e.g. a token id.
    pub userfilter: Option<String>,
}

/// `source` of the task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSource {
    /// Finished tasks (default).
    Archive,
    /// Running tasks.
    Active,
    /// Both.
    All,
}

fn upid_request(template: &'static str, upid: &Upid, params: Params) -> Result<ApiRequest> {
    validate_node(&upid.node)?;
    let text = upid.to_string();
    Ok(ApiRequest::new(
        Method::Get,
        template,
        &[("node", upid.node.as_str()), ("upid", &text)],
        params,
    ))
}

/// `GET /nodes/{node}/tasks/{upid}/status` (the node is the UPID's).
pub fn status_request(upid: &Upid) -> Result<ApiRequest> {
    upid_request("/nodes/{node}/tasks/{upid}/status", upid, Params::new())
}

/// `GET /nodes/{node}/tasks/{upid}/log?start=..&limit=..`.
pub fn log_request(upid: &Upid, start: u64, limit: u64) -> Result<ApiRequest> {
    let mut p = Params::new();
    p.int("start", i64::try_from(start).unwrap_or(i64::MAX));
    p.int("limit", i64::try_from(limit).unwrap_or(i64::MAX));
    upid_request("/nodes/{node}/tasks/{upid}/log", upid, p)
}

/// `GET /nodes/{node}/tasks` with filters.
pub fn list_request(node: &str, q: &TaskListQuery) -> Result<ApiRequest> {
    validate_node(node)?;
    let mut p = Params::new();
    if let Some(v) = q.vmid {
        validate_vmid("vmid", v)?;
        p.int("vmid", i64::from(v));
    }
    if let Some(t) = &q.typefilter {
        if t.is_empty()
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(PveError::invalid_input(
                "typefilter",
                format!("{t:?} is not a task type"),
            ));
        }
        p.str("typefilter", t);
    }
    p.opt_bool("errors", q.errors);
    if let Some(s) = q.source {
        p.str(
            "source",
            match s {
                TaskSource::Archive => "archive",
                TaskSource::Active => "active",
                TaskSource::All => "all",
            },
        );
    }
    p.opt_int("limit", q.limit.map(i64::from));
    p.opt_int("since", q.since);
    if let Some(u) = &q.userfilter {
        let is_user_id = !u.is_empty()
            && u.chars()
                .all(|c| c.is_ascii_alphanumeric() || "@.-_!".contains(c));
        if !is_user_id {
            return Err(PveError::invalid_input(
                "userfilter",
                format!("{u:?} is not a user or token id"),
            ));
        }
        p.str("userfilter", u);
    }
    Ok(ApiRequest::new(
        Method::Get,
        "/nodes/{node}/tasks",
        &[("node", node)],
        p,
    ))
}

impl PveClient {
    /// `GET /nodes/{node}/tasks/{upid}/status`.
    /// The exit status never carries the client's credential (it goes into statuses).
    pub async fn task_status(&self, upid: &Upid) -> Result<TaskStatus> {
        let mut status: TaskStatus = self.call(&status_request(upid)?).await?;
        if let Some(exit) = status.exitstatus.as_mut() {
            *exit = crate::error::clip(&self.without_credential(exit));
        }
        Ok(status)
    }

    /// `GET /nodes/{node}/tasks/{upid}/log`: `limit` lines from line `start` (0-based).
    pub async fn task_log(&self, upid: &Upid, start: u64, limit: u64) -> Result<TaskLog> {
        let req = log_request(upid, start, limit)?;
        let resp = self.execute(&req).await?;
        let lines: Vec<TaskLogLine> = crate::de::decode(resp.data, &req.describe(), &resp.body)?;
        Ok(TaskLog {
            lines,
            total: resp.total,
        })
    }

    /// The last `n` lines of a task log (at most [`MAX_LOG_TAIL_LINES`]), each cut at
    /// [`MAX_LOG_LINE_CHARS`] characters, the oldest dropped beyond [`MAX_LOG_TAIL_CHARS`]
    /// in all: Proxmox is asked for just those lines (`start`/`limit`), and whatever it sends
    /// beyond them is dropped.
    pub async fn task_log_tail(&self, upid: &Upid, n: u32) -> Result<Vec<String>> {
        let n = u64::from(n.min(MAX_LOG_TAIL_LINES));
        let first = self.task_log(upid, 0, 1).await?;
        let total = first.total.unwrap_or(1);
        let start = total.saturating_sub(n);
        let page = self.task_log(upid, start, n).await?;
        Ok(excerpt_of(
            page.lines
                .into_iter()
                .map(|l| self.without_credential(&l.t)),
            n,
        ))
    }

    /// `GET /nodes/{node}/tasks`.
    pub async fn tasks(&self, node: &str, query: &TaskListQuery) -> Result<Vec<TaskListEntry>> {
        self.call(&list_request(node, query)?).await
    }

    /// The states of `upids`, all on `node`, from one read of the node's task list (running
    /// and finished, since the oldest of them started, of their user when they share one): per
    /// UPID found, `None` while it runs or its exit status (credential removed). A UPID missing
    /// from the answer (beyond its page) is absent: ask [`PveClient::task_status`] for it.
    pub async fn task_states(
        &self,
        node: &str,
        upids: &[Upid],
    ) -> Result<HashMap<String, Option<String>>> {
        let Some(since) = upids.iter().map(|u| i64::from(u.starttime)).min() else {
            return Ok(HashMap::new());
        };
        let user = upids
            .first()
            .map(|u| u.user.clone())
            .filter(|user| upids.iter().all(|u| &u.user == user));
        let query = TaskListQuery {
            source: Some(TaskSource::All),
            since: Some(since),
            userfilter: user,
            limit: Some(TASK_STATES_PAGE.max(upids.len() as u32 * 2)),
            ..TaskListQuery::default()
        };
        let wanted: HashSet<String> = upids.iter().map(ToString::to_string).collect();
        let entries = self.tasks(node, &query).await?;
        Ok(entries
            .into_iter()
            .filter(|e| wanted.contains(&e.upid))
            .map(|e| {
                // A running task has no status in the list (some versions say `RUNNING`).
                let exit = e
                    .status
                    .filter(|s| !s.eq_ignore_ascii_case("running"))
                    .map(|s| crate::error::clip(&self.without_credential(&s)));
                (e.upid, exit)
            })
            .collect())
    }

    /// Polls the task with growing delays until it stops. Returns `OK` or `WARNINGS: N`; a failed
    /// task gives [`PveError::TaskFailed`] with the error text and the tail of its log (the cause
    /// classified, so `is_retryable()` is meaningful); exceeding `opts.timeout` gives
    /// [`PveError::Timeout`]. Transient errors while polling are retried by the GET retries.
    pub async fn wait_task(&self, upid: &Upid, opts: &WaitOptions) -> Result<ExitStatus> {
        let started = Instant::now();
        let mut delay = opts.initial_interval;
        loop {
            let status = self.task_status(upid).await?;
            if let Some(exit) = status.exit_status() {
                return match exit {
                    ExitStatus::Error(text) => {
                        let tail = match self.task_log_tail(upid, opts.log_tail_lines).await {
                            Ok(t) => t,
                            Err(e) => vec![format!("(task log unavailable: {e})")],
                        };
                        Err(PveError::task_failed(upid.to_string(), text, tail))
                    }
                    ok => Ok(ok),
                };
            }
            if let Some(limit) = opts.timeout
                && started.elapsed() + delay > limit
            {
                return Err(PveError::Timeout {
                    message: format!(
                        "task {upid} still running after {}s",
                        started.elapsed().as_secs()
                    ),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay + delay / 2).min(opts.max_interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;
    use crate::client::ClientOptions;
    use crate::testing::{self, Canned, MockServer, Recorded};

    const UPID: &str = "UPID:pve:00061CB3:010BA69C:64EFECB0:qmstart:101:root@pam:";

    fn client(url: &str) -> PveClient {
        let cfg = testing::token_config(url, "omni@pve!tk", "s");
        let opts = ClientOptions {
            retry: testing::quick_retries(3, 2),
            ..ClientOptions::default()
        };
        PveClient::with_options(&cfg, opts).unwrap()
    }

    fn fast() -> WaitOptions {
        WaitOptions {
            initial_interval: Duration::from_millis(1),
            max_interval: Duration::from_millis(2),
            timeout: Some(Duration::from_secs(10)),
            log_tail_lines: 2,
        }
    }

    /// Running for `running_polls` status calls, then stopped with `exit`; a 3-line log.
    fn task_server(
        running_polls: usize,
        exit: &'static str,
    ) -> impl Fn(&Recorded) -> Canned + Send + Sync {
        let polls = Arc::new(AtomicUsize::new(0));
        move |r| {
            if r.path.ends_with("/status") {
                let n = polls.fetch_add(1, Ordering::SeqCst);
                let mut s = json!({"upid": UPID, "node": "pve", "pid": 400563, "pstart": 17540764,
                    "starttime": 1693445296, "type": "qmstart", "id": "101", "user": "root@pam",
                    "status": "running"});
                if n >= running_polls {
                    s["status"] = json!("stopped");
                    s["exitstatus"] = json!(exit);
                }
                Canned::data(s)
            } else if r.path.ends_with("/log") {
                let all = ["start VM 101", "kvm: boom", &format!("TASK ERROR: {exit}")];
                let p = r.params();
                let start: usize = p["start"].parse().unwrap();
                let limit: usize = p["limit"].parse().unwrap();
                let lines: Vec<_> = all
                    .iter()
                    .enumerate()
                    .skip(start)
                    .take(limit)
                    .map(|(i, t)| json!({"n": i + 1, "t": t}))
                    .collect();
                Canned::raw(
                    200,
                    "OK",
                    &json!({"data": lines, "total": all.len()}).to_string(),
                )
            } else {
                Canned::raw(501, "not implemented", "")
            }
        }
    }

    #[tokio::test]
    async fn wait_returns_ok_after_polling_a_running_task() {
        let server = MockServer::start(task_server(3, "OK")).await;
        let c = client(&server.url);
        let upid: Upid = UPID.parse().unwrap();
        assert_eq!(c.wait_task(&upid, &fast()).await.unwrap(), ExitStatus::Ok);
        assert_eq!(
            server.count("GET", &format!("/nodes/pve/tasks/{UPID}/status")),
            4
        );
    }

    #[tokio::test]
    async fn wait_returns_warnings_as_success() {
        let server = MockServer::start(task_server(0, "WARNINGS: 2")).await;
        let c = client(&server.url);
        let upid: Upid = UPID.parse().unwrap();
        assert_eq!(
            c.wait_task(&upid, &fast()).await.unwrap(),
            ExitStatus::Warnings(2)
        );
    }

    #[tokio::test]
    async fn a_failed_task_reports_its_exit_status_and_log_tail() {
        let server = MockServer::start(task_server(1, "VM 101 already running")).await;
        let c = client(&server.url);
        let upid: Upid = UPID.parse().unwrap();
        match c.wait_task(&upid, &fast()).await {
            Err(PveError::TaskFailed {
                upid: u,
                exit_status,
                log_tail,
                cause,
            }) => {
                assert_eq!(u, UPID);
                assert_eq!(exit_status, "VM 101 already running");
                assert_eq!(
                    log_tail,
                    ["kvm: boom", "TASK ERROR: VM 101 already running"]
                );
                assert_eq!(cause, crate::error::ErrorKind::Conflict);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_log_tail_asks_for_few_lines_and_keeps_a_bounded_excerpt() {
        // A server that ignores `limit` and sends 200 lines of 5,000 characters.
        let server = MockServer::start(|r: &Recorded| {
            let line = "x".repeat(5_000);
            let lines: Vec<serde_json::Value> = (9_800..10_000)
                .map(|n| json!({ "n": n + 1, "t": format!("{n} {line}") }))
                .collect();
            let mut c = Canned::data(json!(lines));
            if r.query.contains("limit=1&") || r.query.ends_with("limit=1") {
                c.body = json!({ "data": [{ "n": 1, "t": "first" }], "total": 10_000 }).to_string();
            }
            c
        })
        .await;
        let upid: Upid = UPID.parse().unwrap();
        let options = ClientOptions::default();
        let cfg = testing::token_config(&server.url, "omni@pve!tk", "s");
        let c = PveClient::with_options(&cfg, options).unwrap();
        let tail = c.task_log_tail(&upid, 1000).await.unwrap();
        let asked: Vec<String> = server.requests().iter().map(|r| r.query.clone()).collect();
        assert_eq!(
            asked.last().map(String::as_str),
            Some("start=9950&limit=50"),
            "{asked:?}"
        );
        assert!(tail.len() <= MAX_LOG_TAIL_LINES as usize, "{}", tail.len());
        assert!(
            tail.iter()
                .all(|l| l.chars().count() <= MAX_LOG_LINE_CHARS + 1)
        );
        let total: usize = tail.iter().map(|l| l.chars().count()).sum();
        assert!(total <= MAX_LOG_TAIL_CHARS, "{total}");
        assert!(
            tail.last().unwrap().starts_with("9999 x"),
            "the newest line is kept"
        );
    }

    #[tokio::test]
    async fn wait_gives_up_after_its_timeout() {
        let server = MockServer::start(task_server(usize::MAX, "OK")).await;
        let c = client(&server.url);
        let upid: Upid = UPID.parse().unwrap();
        let opts = WaitOptions {
            timeout: Some(Duration::from_millis(20)),
            ..fast()
        };
        assert!(matches!(
            c.wait_task(&upid, &opts).await,
            Err(PveError::Timeout { .. })
        ));
    }

    #[test]
    fn task_requests_use_the_upids_node_and_validate_filters() {
        let upid: Upid = "UPID:pve2:00061CB3:010BA69C:64EFECB0:qmclone:112:capmox@pve!capi:"
            .parse()
            .unwrap();
        let r = status_request(&upid).unwrap();
        assert_eq!(
            r.path,
            "/nodes/pve2/tasks/UPID:pve2:00061CB3:010BA69C:64EFECB0:qmclone:112:capmox@pve!capi:/status"
        );
        let q = TaskListQuery {
            vmid: Some(100),
            typefilter: Some("qmcreate".into()),
            errors: Some(true),
            source: Some(TaskSource::All),
            limit: Some(10),
            since: None,
            userfilter: Some("pve-operator@pve!controller".into()),
        };
        assert_eq!(
            list_request("pve", &q).unwrap().params.form_encode(),
            "vmid=100&typefilter=qmcreate&errors=1&source=all&limit=10&userfilter=pve-operator%40pve%21controller"
        );
        let bad = TaskListQuery {
            typefilter: Some("qm&x".into()),
            ..TaskListQuery::default()
        };
        assert!(list_request("pve", &bad).is_err());
        let bad_user = TaskListQuery {
            userfilter: Some("root@pam&source=all".into()),
            ..TaskListQuery::default()
        };
        assert!(list_request("pve", &bad_user).is_err());
    }
}
