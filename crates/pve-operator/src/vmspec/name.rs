//! The VM's name in Proxmox.

use pve_operator_api::MachineRequest;

/// The longest name the controller gives a VM: one DNS label, so that it also works as the
/// guest's host name (cloud-init uses it).
const MAX_NAME: usize = 63;
/// The name when nothing usable is left after sanitising.
const FALLBACK: &str = "vm";

/// The VM name: `spec.vmName`, or the MachineRequest's `metadata.name`, sanitised to a valid
/// Proxmox DNS name (letters, digits, inner `-`, labels joined by `.`) of at most 63
/// characters.
pub fn vm_name(request: &MachineRequest) -> String {
    let raw = request
        .spec
        .vm_name
        .as_deref()
        .or(request.metadata.name.as_deref())
        .unwrap_or_default();
    sanitise(raw)
}

/// Makes `raw` a DNS name: other characters become `-`, labels lose leading and trailing
/// `-`, empty labels vanish, and the result is cut at 63 characters.
pub(crate) fn sanitise(raw: &str) -> String {
    let mapped: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let labels: Vec<&str> = mapped
        .split('.')
        .map(|l| l.trim_matches('-'))
        .filter(|l| !l.is_empty())
        .collect();
    let mut name = labels.join(".");
    name.truncate(MAX_NAME);
    let name = name.trim_end_matches(['-', '.']).to_owned();
    if name.is_empty() {
        FALLBACK.to_owned()
    } else {
        name
    }
}
