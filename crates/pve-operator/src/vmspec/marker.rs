//! The identity marker that ties a Proxmox VM to its MachineRequest (docs/design.md principles 1
//! and 2): a tag (`mr-<uid>`, visible in `/cluster/resources`), a line in the description, and
//! the SMBIOS uuid. The marker's namespace is reserved: the `pve-operator` tag, every `mr-*` tag
//! and every description line starting with `pve-operator:` belong to the controller, never to
//! a user's spec (admission refuses them; [`Marker::is_reserved_tag`] and
//! [`Marker::is_reserved_line`] strip them from objects stored before that rule).

use pve_operator_api::MachineRequest;
use pve_operator_api::reserved::{self, RESERVED_LINE_PREFIX, UID_TAG_PREFIX};

use super::wire;

/// The start of the description marker line.
const LINE_PREFIX: &str = "pve-operator: MachineRequest ";
/// What precedes the uid at the end of the description marker line.
const LINE_UID: &str = " uid=";

/// The identity of one MachineRequest, as written into its VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The MachineRequest's `metadata.uid` (a UUID).
    pub uid: String,
    /// The MachineRequest's namespace.
    pub namespace: String,
    /// The MachineRequest's name.
    pub name: String,
}

impl Marker {
    /// The tag on every VM the controller manages.
    pub const MANAGED_TAG: &'static str = reserved::MANAGED_TAG;

    /// The marker of the request with this uid, namespace and name.
    pub fn new(
        uid: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            uid: uid.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Builds the marker of a MachineRequest (uid, namespace, name from metadata); `None`
    /// without a uid (an object not yet stored by the API server).
    pub fn of(request: &MachineRequest) -> Option<Self> {
        let meta = &request.metadata;
        let uid = meta.uid.as_deref().filter(|u| !u.is_empty())?;
        Some(Self::new(
            uid,
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        ))
    }

    /// The uid tag, `mr-<uid>`: lowercase, and a valid Proxmox tag (characters a tag cannot
    /// hold become `-`; Kubernetes UIDs are UUIDs and pass unchanged).
    pub fn uid_tag(&self) -> String {
        let uid: String = self
            .uid
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("{UID_TAG_PREFIX}{uid}")
    }

    /// The line appended to the VM's description, e.g.
    /// `pve-operator: MachineRequest default/web-1 uid=0b6f...`.
    pub fn description_line(&self) -> String {
        format!(
            "{LINE_PREFIX}{}/{}{LINE_UID}{}",
            self.namespace, self.name, self.uid
        )
    }

    /// The `smbios1` value, `uuid=<uid>`.
    pub fn smbios1(&self) -> String {
        format!("uuid={}", self.uid)
    }

    /// The uid as SMBIOS uuid, when it is a UUID (Proxmox refuses anything else there).
    pub fn smbios_uuid(&self) -> Option<&str> {
        wire::is_uuid(&self.uid).then_some(self.uid.as_str())
    }

    /// True when `/cluster/resources` tags (already split) carry this request's uid tag.
    pub fn is_in_tags(&self, tags: &[&str]) -> bool {
        let own = self.uid_tag();
        tags.iter().any(|t| t.trim().eq_ignore_ascii_case(&own))
    }

    /// True when a description holds this request's marker line.
    pub fn is_in_description(&self, description: &str) -> bool {
        description
            .lines()
            .filter_map(uid_of_line)
            .any(|uid| uid == self.uid)
    }

    /// Whether `tag` is in the controller's reserved namespace: the managed tag or any `mr-*`
    /// tag, in any letter case. A user's tag there could make a VM look like another request's.
    pub fn is_reserved_tag(tag: &str) -> bool {
        let tag = tag.trim();
        tag.eq_ignore_ascii_case(Self::MANAGED_TAG)
            || tag
                .get(..UID_TAG_PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(UID_TAG_PREFIX))
    }

    /// Whether a description line is reserved for the controller: it starts, after
    /// whitespace, with `pve-operator:` (in any letter case). Every marker line is one.
    pub fn is_reserved_line(line: &str) -> bool {
        line.trim()
            .get(..RESERVED_LINE_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_LINE_PREFIX))
    }

    /// Whether `tag` is one of the marker's tags (the managed tag or this uid tag).
    pub(crate) fn is_marker_tag(&self, tag: &str) -> bool {
        tag.eq_ignore_ascii_case(Self::MANAGED_TAG) || tag.eq_ignore_ascii_case(&self.uid_tag())
    }
}

/// The uid in a marker line, if `line` is one.
fn uid_of_line(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix(LINE_PREFIX)?;
    let (_, uid) = rest.rsplit_once(LINE_UID)?;
    (!uid.is_empty() && !uid.contains(char::is_whitespace)).then_some(uid)
}

/// Whether `line` is a marker line of the request with `uid`.
pub(crate) fn is_marker_line_of(line: &str, uid: &str) -> bool {
    uid_of_line(line) == Some(uid)
}
