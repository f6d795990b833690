//! Worker tasks: UPIDs exactly as PVE encodes them, their status and log.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a task does when its duration has passed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum TaskAction {
    /// `qmcreate`: finish creating the VM (allocate disks, drop the lock), optionally start it.
    Create {
        /// VMID.
        vmid: u32,
        /// Start after creating.
        start: bool,
        /// The requested config (disks still as `STORAGE:SIZE`).
        conf: std::collections::BTreeMap<String, String>,
    },
    /// `qmstart`.
    Start {
        /// VMID.
        vmid: u32,
    },
    /// `qmstop`.
    Stop {
        /// VMID.
        vmid: u32,
    },
    /// `qmshutdown`.
    Shutdown {
        /// VMID.
        vmid: u32,
        /// Stop if the guest does not shut down.
        force: bool,
    },
    /// `qmreboot`: apply pending changes.
    Reboot {
        /// VMID.
        vmid: u32,
    },
    /// `qmreset`.
    Reset {
        /// VMID.
        vmid: u32,
    },
    /// `qmpause`.
    Suspend {
        /// VMID.
        vmid: u32,
    },
    /// `qmresume`.
    Resume {
        /// VMID.
        vmid: u32,
    },
    /// `qmdestroy`.
    Destroy {
        /// VMID.
        vmid: u32,
        /// Also destroy unreferenced disks with this VMID.
        destroy_unreferenced: bool,
        /// The lock found when the request came in (the task fails with it).
        locked: Option<String>,
    },
    /// `qmclone`: finish the clone `newid` of `vmid`.
    Clone {
        /// Source VMID.
        vmid: u32,
        /// New VMID.
        newid: u32,
        /// Full copy (otherwise linked, from a template).
        full: bool,
        /// Target storage for full clones.
        storage: Option<String>,
    },
    /// `qmconfig`: nothing left to do (the change was applied synchronously).
    Config {
        /// VMID.
        vmid: u32,
    },
    /// `resize`: grow `disk` to `new_size` bytes.
    Resize {
        /// VMID.
        vmid: u32,
        /// Drive key (`scsi0`).
        disk: String,
        /// Requested size (`+10G`, `40G`, bytes).
        size: String,
    },
    /// `download`: a file fetched from a URL into a storage. It runs until its fetch ends
    /// ([`crate::download`]), not for a set time.
    Download {
        /// The volume it creates (`local:iso/debian.iso`).
        volid: String,
    },
    /// `imgdel`: removes a volume of a storage.
    DeleteVolume {
        /// The volume.
        volid: String,
        /// The node whose copy it removes (`None` on shared storages).
        node: Option<String>,
    },
}

impl TaskAction {
    /// The VM whose config lock (flock) the task holds while it runs; 0 (no VM has it) for
    /// storage tasks, which hold none.
    pub fn vmid(&self) -> u32 {
        match self {
            TaskAction::Create { vmid, .. }
            | TaskAction::Start { vmid }
            | TaskAction::Stop { vmid }
            | TaskAction::Shutdown { vmid, .. }
            | TaskAction::Reboot { vmid }
            | TaskAction::Reset { vmid }
            | TaskAction::Suspend { vmid }
            | TaskAction::Resume { vmid }
            | TaskAction::Destroy { vmid, .. }
            | TaskAction::Clone { vmid, .. }
            | TaskAction::Config { vmid }
            | TaskAction::Resize { vmid, .. } => *vmid,
            TaskAction::Download { .. } | TaskAction::DeleteVolume { .. } => 0,
        }
    }
}

impl TaskAction {
    /// The VM whose config flock the task holds: [`TaskAction::vmid`], except that under the
    /// capacity model (`capacity`) a clone holds its target's (qemu-server `lock_target_vm`
    /// wraps the whole clone; the template's is only taken shared).
    pub fn held_flock(&self, capacity: bool) -> u32 {
        match self {
            TaskAction::Clone { newid, .. } if capacity => *newid,
            other => other.vmid(),
        }
    }
}

/// One task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    /// The UPID.
    pub upid: String,
    /// Node.
    pub node: String,
    /// Simulated worker pid.
    pub pid: u32,
    /// Simulated process start (clock ticks since boot).
    pub pstart: u64,
    /// Start time (seconds since the epoch).
    pub starttime: u64,
    /// Task type (`qmcreate`, ...).
    pub kind: String,
    /// Task id (usually the vmid).
    pub id: String,
    /// Who started it: `user@realm` or `user@realm!token`.
    pub user: String,
    /// When it ends (ms since the epoch).
    pub end_ms: u64,
    /// `None` while running, then `OK` or the error text.
    pub exitstatus: Option<String>,
    /// End time (seconds) once stopped.
    pub endtime: Option<u64>,
    /// Log lines (without the final `TASK ...` line while running).
    pub log: Vec<String>,
    /// The effect applied when the task ends.
    pub action: TaskAction,
    /// An injected failure: the task ends with this error instead of its effect.
    pub injected_failure: Option<String>,
}

/// `UPID:node:PID:PSTART:STARTTIME:type:id:user:` with uppercase `%08X` fields.
pub fn encode_upid(
    node: &str,
    pid: u32,
    pstart: u64,
    starttime: u64,
    kind: &str,
    id: &str,
    user: &str,
) -> String {
    format!("UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{kind}:{id}:{user}:")
}

/// The fields of a UPID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upid {
    /// Node.
    pub node: String,
    /// Pid.
    pub pid: u32,
    /// Process start.
    pub pstart: u64,
    /// Start time.
    pub starttime: u64,
    /// Type.
    pub kind: String,
    /// Id.
    pub id: String,
    /// User or token id.
    pub user: String,
}

/// Decodes a UPID with PVE's regex; `None` if it does not parse.
pub fn decode_upid(upid: &str) -> Option<Upid> {
    let rest = upid.strip_prefix("UPID:")?.strip_suffix(':')?;
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() != 7 {
        return None;
    }
    let node = parts[0];
    let node_ok = !node.is_empty()
        && node.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !node.starts_with('-')
        && !node.ends_with('-');
    let hex = |s: &str, lens: &[usize]| {
        lens.contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
    };
    let field_ok = |s: &str| !s.contains(|c: char| c.is_whitespace() || c == '/');
    if !node_ok
        || !hex(parts[1], &[8])
        || !hex(parts[2], &[8, 9])
        || !hex(parts[3], &[8])
        || parts[4].is_empty()
        || !field_ok(parts[4])
        || !field_ok(parts[5])
        || parts[6].is_empty()
        || !field_ok(parts[6])
    {
        return None;
    }
    Some(Upid {
        node: node.to_string(),
        pid: u32::from_str_radix(parts[1], 16).ok()?,
        pstart: u64::from_str_radix(parts[2], 16).ok()?,
        starttime: u64::from_str_radix(parts[3], 16).ok()?,
        kind: parts[4].to_string(),
        id: parts[5].to_string(),
        user: parts[6].to_string(),
    })
}

impl Task {
    /// Whether the task is still running.
    pub fn running(&self) -> bool {
        self.exitstatus.is_none()
    }

    /// Marks the task stopped with `exitstatus` (`OK` or an error), appending the final log line.
    pub fn finish(&mut self, exitstatus: &str, now_secs: u64) {
        if exitstatus == "OK" {
            self.log.push("TASK OK".to_string());
        } else if exitstatus.starts_with("WARNINGS: ") {
            self.log.push(format!("TASK {exitstatus}"));
        } else {
            self.log
                .push(format!("TASK ERROR: {}", exitstatus.replace('\n', " ")));
        }
        self.exitstatus = Some(exitstatus.replace('\n', " ").trim_end().to_string());
        self.endtime = Some(now_secs);
    }

    /// `(user, tokenid)` split of the owner.
    fn owner_parts(&self) -> (&str, Option<&str>) {
        match self.user.split_once('!') {
            Some((u, t)) => (u, Some(t)),
            None => (&self.user, None),
        }
    }

    /// The `/tasks/{upid}/status` body.
    pub fn status_json(&self) -> Value {
        let (user, token) = self.owner_parts();
        let mut v = json!({
            "upid": self.upid,
            "node": self.node,
            "pid": self.pid,
            "pstart": self.pstart,
            "starttime": self.starttime,
            "type": self.kind,
            "id": self.id,
            "user": user,
            "status": if self.running() { "running" } else { "stopped" },
        });
        if let Some(t) = token {
            v["tokenid"] = json!(t);
        }
        if let Some(e) = &self.exitstatus {
            v["exitstatus"] = json!(e);
        }
        v
    }

    /// An entry of the `/nodes/{node}/tasks` list.
    pub fn list_json(&self) -> Value {
        let (user, token) = self.owner_parts();
        let mut v = json!({
            "upid": self.upid,
            "node": self.node,
            "pid": self.pid,
            "pstart": self.pstart,
            "starttime": self.starttime,
            "type": self.kind,
            "id": self.id,
            "user": user,
        });
        if let Some(t) = token {
            v["tokenid"] = json!(t);
        }
        if let Some(e) = &self.exitstatus {
            v["status"] = json!(e);
            v["endtime"] = json!(self.endtime.unwrap_or(self.starttime));
        }
        v
    }

    /// Whether `auth_id` owns the task: a token owns only its own tasks, a user its own and
    /// its tokens' tasks.
    pub fn owned_by(&self, auth_id: &str) -> bool {
        if auth_id.contains('!') {
            self.user == auth_id
        } else {
            self.owner_parts().0 == auth_id
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upid_has_uppercase_hex_and_trailing_colon() {
        let upid = encode_upid(
            "pve", 0x61cb3, 0x10ba69c, 0x64efecb0, "qmcreate", "101", "root@pam",
        );
        assert_eq!(
            upid,
            "UPID:pve:00061CB3:010BA69C:64EFECB0:qmcreate:101:root@pam:"
        );
        let d = decode_upid(&upid).expect("decodes");
        assert_eq!(d.pid, 0x61cb3);
        assert_eq!(d.user, "root@pam");
    }

    #[test]
    fn token_upid_decodes_and_garbage_does_not() {
        assert!(
            decode_upid("UPID:pve:00061CB3:010BA69C:64EFECB0:qmclone:112:capmox@pve!capi:")
                .is_some()
        );
        assert!(decode_upid("UPID:pve:1:2:3:x:y:z:").is_none());
        assert!(decode_upid("nonsense").is_none());
    }
}
