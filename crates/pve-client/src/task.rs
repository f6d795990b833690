//! Proxmox task identifiers (UPIDs), task status and exit statuses.
//!
//! A UPID is `UPID:node:PID:PSTART:STARTTIME:type:id:user:` with `%08X` upper-case hex numbers
//! (`pstart` may have 9 digits after 497 days of uptime) and a trailing colon
//! (pve-common `Tools.pm::upid_encode`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::de;
use crate::error::PveError;

/// A parsed UPID. `Display` prints it exactly as Proxmox does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Upid {
    /// The node the task runs on.
    pub node: String,
    /// The worker's process id.
    pub pid: u32,
    /// The worker's start time in clock ticks since boot.
    pub pstart: u64,
    /// The task's start time (unix seconds).
    pub starttime: u32,
    /// The task type (`qmcreate`, `qmstart`, `qmclone`, ...).
    pub task_type: String,
    /// The task's object id, usually the VMID (may be empty).
    pub id: String,
    /// Who started the task: `user@realm` or a token id `user@realm!token`.
    pub user: String,
}

fn is_node_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

fn is_upid_word(s: &str) -> bool {
    s.chars()
        .all(|c| c != ':' && c != '/' && !c.is_whitespace())
}

fn hex_field(
    s: &str,
    digits: std::ops::RangeInclusive<usize>,
    what: &str,
    upid: &str,
) -> Result<u64, PveError> {
    if !digits.contains(&s.len()) || !s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(PveError::invalid_input(
            "upid",
            format!(
                "{upid:?}: {what} must be {} to {} hex digits",
                digits.start(),
                digits.end()
            ),
        ));
    }
    u64::from_str_radix(s, 16)
        .map_err(|e| PveError::invalid_input("upid", format!("{upid:?}: {what}: {e}")))
}

impl FromStr for Upid {
    type Err = PveError;

    fn from_str(s: &str) -> Result<Self, PveError> {
        let bad =
            |why: &str| PveError::invalid_input("upid", format!("{s:?} is not a UPID: {why}"));
        let rest = s
            .strip_prefix("UPID:")
            .ok_or_else(|| bad("it must start with 'UPID:'"))?;
        let rest = rest
            .strip_suffix(':')
            .ok_or_else(|| bad("it must end with ':'"))?;
        let fields: Vec<&str> = rest.split(':').collect();
        let [node, pid, pstart, starttime, task_type, id, user] = fields.as_slice() else {
            return Err(bad(
                "it must have 7 fields node:pid:pstart:starttime:type:id:user",
            ));
        };
        if !is_node_name(node) {
            return Err(bad("invalid node name"));
        }
        if task_type.is_empty()
            || !is_upid_word(task_type)
            || !is_upid_word(id)
            || user.is_empty()
            || !is_upid_word(user)
        {
            return Err(bad("invalid type, id or user"));
        }
        Ok(Upid {
            node: (*node).to_owned(),
            pid: u32::try_from(hex_field(pid, 8..=8, "pid", s)?)
                .map_err(|_| bad("pid out of range"))?,
            pstart: hex_field(pstart, 8..=9, "pstart", s)?,
            starttime: u32::try_from(hex_field(starttime, 8..=8, "starttime", s)?)
                .map_err(|_| bad("starttime out of range"))?,
            task_type: (*task_type).to_owned(),
            id: (*id).to_owned(),
            user: (*user).to_owned(),
        })
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UPID:{}:{:08X}:{:08X}:{:08X}:{}:{}:{}:",
            self.node, self.pid, self.pstart, self.starttime, self.task_type, self.id, self.user
        )
    }
}

impl Serialize for Upid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Upid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How a stopped task ended (`exitstatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// `OK`.
    Ok,
    /// `WARNINGS: N`: finished, with N warnings in the log.
    Warnings(u32),
    /// Anything else: the error text (`VM 100 already running`, `unexpected status`, ...).
    Error(String),
}

impl ExitStatus {
    /// Parses Proxmox's `exitstatus` string.
    pub fn parse(s: &str) -> ExitStatus {
        let t = s.trim();
        if t == "OK" {
            return ExitStatus::Ok;
        }
        if let Some(n) = t
            .strip_prefix("WARNINGS: ")
            .and_then(|n| n.trim().parse().ok())
        {
            return ExitStatus::Warnings(n);
        }
        ExitStatus::Error(t.to_owned())
    }

    /// Whether the task succeeded (`OK` or warnings).
    pub fn is_success(&self) -> bool {
        !matches!(self, ExitStatus::Error(_))
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Ok => f.write_str("OK"),
            ExitStatus::Warnings(n) => write!(f, "WARNINGS: {n}"),
            ExitStatus::Error(e) => f.write_str(e),
        }
    }
}

/// `GET /nodes/{node}/tasks/{upid}/status`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TaskStatus {
    /// The task's UPID (kept as text).
    pub upid: String,
    /// The node.
    pub node: String,
    /// `running` or `stopped`.
    pub status: String,
    /// Present once stopped.
    #[serde(default, deserialize_with = "de::opt_string")]
    pub exitstatus: Option<String>,
    /// The task type.
    #[serde(rename = "type")]
    pub task_type: String,
    /// The task's object id (a string, even for VMIDs).
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// The user (for token tasks the owning user; see `tokenid`).
    pub user: String,
    /// The token name when a token started the task.
    #[serde(default)]
    pub tokenid: Option<String>,
    /// The worker pid.
    #[serde(deserialize_with = "de::u64")]
    pub pid: u64,
    /// The worker start in clock ticks.
    #[serde(deserialize_with = "de::u64")]
    pub pstart: u64,
    /// Start time (unix seconds).
    #[serde(deserialize_with = "de::i64")]
    pub starttime: i64,
}

impl TaskStatus {
    /// Whether the task is still running.
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }

    /// The exit status, once stopped.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        if self.is_running() {
            return None;
        }
        Some(ExitStatus::parse(
            self.exitstatus.as_deref().unwrap_or("unexpected status"),
        ))
    }
}

/// One line of `GET /nodes/{node}/tasks/{upid}/log`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TaskLogLine {
    /// Line number, from 1.
    #[serde(deserialize_with = "de::u64")]
    pub n: u64,
    /// The text.
    #[serde(deserialize_with = "de::string")]
    pub t: String,
}

/// One entry of `GET /nodes/{node}/tasks`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TaskListEntry {
    /// The UPID.
    pub upid: String,
    /// The node.
    pub node: String,
    /// The task type.
    #[serde(rename = "type")]
    pub task_type: String,
    /// The object id.
    #[serde(deserialize_with = "de::string")]
    pub id: String,
    /// Who started it.
    pub user: String,
    /// The status (the exit status for finished tasks, absent while running).
    #[serde(default, deserialize_with = "de::opt_string")]
    pub status: Option<String>,
    /// Start time (unix seconds).
    #[serde(deserialize_with = "de::i64")]
    pub starttime: i64,
    /// End time (finished tasks only).
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub endtime: Option<i64>,
    /// Worker pid.
    #[serde(deserialize_with = "de::u64")]
    pub pid: u64,
    /// Worker start in clock ticks.
    #[serde(deserialize_with = "de::u64")]
    pub pstart: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: [&str; 4] = [
        "UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:",
        "UPID:pve-srv:0012D68C:8206F38C:65144CB7:qmcreate:501:root@pam:",
        "UPID:prox-srv2:003EB904:2E8895E0:65C0FA88:qmstart:129:root@pam:",
        "UPID:pve:00012345:1ABCDEF01:65C0FA88:qmclone:112:capmox@pve!capi:",
    ];

    #[test]
    fn real_upids_parse_and_print_back_exactly() {
        for s in REAL {
            let u: Upid = s.parse().unwrap();
            assert_eq!(u.to_string(), s);
        }
        let u: Upid = REAL[0].parse().unwrap();
        assert_eq!(u.node, "pve");
        assert_eq!(u.pid, 0x61CB3);
        assert_eq!(u.pstart, 0x010B_A69C);
        assert_eq!(u.starttime, 0x64EF_ECB0);
        assert_eq!(u.task_type, "qmcreate");
        assert_eq!(u.id, "101");
        assert_eq!(u.user, "root@pam");
        let nine: Upid = REAL[3].parse().unwrap();
        assert_eq!(nine.pstart, 0x1_ABCD_EF01);
        assert_eq!(nine.user, "capmox@pve!capi");
    }

    #[test]
    fn printing_pads_with_upper_case_hex() {
        let u = Upid {
            node: "n1".into(),
            pid: 0xab,
            pstart: 1,
            starttime: 0x65c0fa88,
            task_type: "imgcopy".into(),
            id: String::new(),
            user: "root@pam".into(),
        };
        assert_eq!(
            u.to_string(),
            "UPID:n1:000000AB:00000001:65C0FA88:imgcopy::root@pam:"
        );
        assert_eq!(u.to_string().parse::<Upid>().unwrap(), u);
    }

    #[test]
    fn malformed_upids_are_refused() {
        for s in [
            "",
            "UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam",
            "UPID:pve:61CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:",
            "UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:extra:",
            "UPID:-pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:",
            "UPID:pve:00061CB3:010BA69C:64EFECB0::101:root@pam:",
            "UPID:pve:0006ZCB3:010BA69C:64EFECB0:qmcreate:101:root@pam:",
            "UPID:pve:00061CB3:010BA69C:64EFECB0:qm create:101:root@pam:",
            "UPID:node1:00000001:00000001:00000001:test:running:root@pam:fake",
        ] {
            assert!(
                matches!(s.parse::<Upid>(), Err(PveError::InvalidInput { .. })),
                "{s:?}"
            );
        }
    }

    #[test]
    fn upid_serde_is_the_string_form() {
        let u: Upid = serde_json::from_str(&format!("\"{}\"", REAL[1])).unwrap();
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            format!("\"{}\"", REAL[1])
        );
        assert!(serde_json::from_str::<Upid>("\"nope\"").is_err());
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(ExitStatus::parse("OK"), ExitStatus::Ok);
        assert_eq!(ExitStatus::parse("WARNINGS: 3"), ExitStatus::Warnings(3));
        assert!(ExitStatus::parse("WARNINGS: 1").is_success());
        let e = ExitStatus::parse("VM 100 already running");
        assert_eq!(e, ExitStatus::Error("VM 100 already running".into()));
        assert!(!e.is_success());
        assert_eq!(e.to_string(), "VM 100 already running");
        assert_eq!(ExitStatus::Warnings(2).to_string(), "WARNINGS: 2");
    }

    #[test]
    fn task_status_decodes_real_shapes() {
        let running: TaskStatus = serde_json::from_str(
            r#"{"upid":"UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:","node":"pve","pid":400563,"pstart":17540764,"starttime":1693445296,"type":"qmcreate","id":"101","user":"root@pam","status":"running"}"#,
        )
        .unwrap();
        assert!(running.is_running());
        assert_eq!(running.exit_status(), None);
        let stopped: TaskStatus = serde_json::from_str(
            r#"{"upid":"U","node":"pve","pid":"1","pstart":"2","starttime":"3","type":"qmstart","id":100,"user":"root@pam","tokenid":"mytoken","status":"stopped","exitstatus":"interrupted by signal"}"#,
        )
        .unwrap();
        assert_eq!(
            stopped.exit_status(),
            Some(ExitStatus::Error("interrupted by signal".into()))
        );
        assert_eq!(stopped.id, "100");
        let log: Vec<TaskLogLine> = serde_json::from_str(r#"[{"n":1,"t":"no content"}]"#).unwrap();
        assert_eq!(log[0].t, "no content");
    }
}
