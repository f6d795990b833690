//! Releasing a VM for `deletionPolicy: Retain` (docs/design.md principle 6).

use pve_client::api::vmconfig::VmConfigView;
use pve_client::error::PveError;

use super::marker::{Marker, is_marker_line_of};
use super::plan::UpdatePlan;
use super::wire;

/// For `deletionPolicy: Retain`: remove the managed tag, the uid tag and the marker line,
/// keeping the user's tags and description. The SMBIOS uuid stays: it is the guest's machine
/// identity, and a released VM is no longer found through it (the inventory reads tags).
///
/// Fails when what is kept does not encode (a tag or description set out of band that the
/// client's encoders refuse); nothing has been sent then.
pub fn release_marker(marker: &Marker, current: &VmConfigView) -> Result<UpdatePlan, PveError> {
    let mut plan = UpdatePlan::default();
    let tags = current.tags();
    let keep: Vec<String> = tags
        .iter()
        .filter(|t| !marker.is_marker_tag(t))
        .map(|t| (*t).to_owned())
        .collect();
    if keep.len() != tags.len() {
        if keep.is_empty() {
            plan.delete("tags");
        } else {
            plan.config.tags = keep;
        }
    }
    if let Some(description) = current.get("description") {
        let kept: Vec<&str> = description
            .lines()
            .filter(|l| !is_marker_line_of(l, &marker.uid))
            .collect();
        let kept = wire::normalise_description(&kept.join("\n"));
        if kept != wire::normalise_description(description) {
            if kept.is_empty() {
                plan.delete("description");
            } else {
                plan.config.description = Some(kept);
            }
        }
    }
    plan.seal()
}
