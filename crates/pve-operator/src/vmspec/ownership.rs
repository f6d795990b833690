//! Whether a VM is a request's own (docs/design.md principle 2): only the full marker makes it so.
//! One marker part alone is what anyone who can tag a VM, or copy one, could forge.

use pve_client::api::vmconfig::VmConfigView;

use super::marker::Marker;

/// What a VM's config is to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// The full marker: the uid tag, the description marker line and, where the VM has an
    /// SMBIOS uuid and the request's uid is a UUID, that uuid equal to the uid.
    Full,
    /// The clone window: only the description marker line, at the VMID recorded in
    /// `status.vmid` before the clone was sent. A clone takes no tags (it inherits the
    /// template's) and gets a fresh SMBIOS uuid; the controller's first update completes the
    /// marker.
    CloneWindow,
    /// Part of the marker, not the clone window: never the request's VM.
    Partial(MarkerMismatch),
    /// A template, whatever it carries: a template is never a request's VM.
    Template,
    /// No part of the marker.
    Absent,
}

impl Ownership {
    /// Whether the VM is the request's (full marker, or the clone window).
    pub fn is_ours(&self) -> bool {
        matches!(self, Ownership::Full | Ownership::CloneWindow)
    }
}

/// Which part of a request's marker a VM lacks or contradicts. The text names no other
/// request: it says what the VM carries of *this* request's marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MarkerMismatch {
    /// The uid tag without the description marker line.
    #[error("carries this request's uid tag but not its description marker line")]
    TagWithoutLine,
    /// The description marker line without the uid tag, elsewhere than at the recorded VMID.
    #[error(
        "carries this request's description marker line but not its uid tag, and is not at the VMID recorded in status.vmid"
    )]
    LineWithoutTag,
    /// Tag and line, but an SMBIOS uuid that is not the request's uid (a copy of its VM, such as
    /// a clone made in Proxmox).
    #[error(
        "carries this request's uid tag and description marker line, but its SMBIOS uuid (smbios1) is not this request's uid (a copy of the VM, such as a clone made in Proxmox, looks like this)"
    )]
    SmbiosMismatch,
    /// The SMBIOS uuid alone.
    #[error(
        "carries this request's uid as SMBIOS uuid but neither its uid tag nor its description marker line"
    )]
    SmbiosOnly,
}

impl Marker {
    /// What `config` (a VM's `GET .../config`) is to this request. `at_recorded_vmid` says
    /// whether the VM is at the VMID this request recorded in `status.vmid`: only there does a
    /// description line without the uid tag count (the clone window).
    pub fn ownership(&self, config: &VmConfigView, at_recorded_vmid: bool) -> Ownership {
        if config.get_bool("template").unwrap_or(false) {
            return Ownership::Template;
        }
        let tag = self.is_in_tags(&config.tags());
        let line = config
            .get("description")
            .is_some_and(|d| self.is_in_description(d));
        // Checked only when both sides have one: a uid that is not a UUID is never written
        // there, and a VM may have no smbios1 at all.
        let smbios = match (self.smbios_uuid(), config.smbios_uuid()) {
            (Some(own), Some(found)) => Some(found.eq_ignore_ascii_case(own)),
            _ => None,
        };
        match (tag, line, smbios) {
            (true, true, Some(false)) => Ownership::Partial(MarkerMismatch::SmbiosMismatch),
            (true, true, _) => Ownership::Full,
            (true, false, _) => Ownership::Partial(MarkerMismatch::TagWithoutLine),
            (false, true, _) if at_recorded_vmid => Ownership::CloneWindow,
            (false, true, _) => Ownership::Partial(MarkerMismatch::LineWithoutTag),
            (false, false, Some(true)) => Ownership::Partial(MarkerMismatch::SmbiosOnly),
            (false, false, _) => Ownership::Absent,
        }
    }
}
