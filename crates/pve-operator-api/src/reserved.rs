//! The controller's reserved marker namespace in Proxmox: the tags and the description line with
//! which it marks the VMs it owns. A request may write none of them (admission refuses them with
//! the CEL rules here; the controller also drops them from what it writes): a tenant who could
//! would make a VM look like another request's, or disguise its own.

/// The tag on every VM the controller manages.
pub const MANAGED_TAG: &str = "pve-operator";

/// The prefix of the per-request uid tag (`mr-<uid>`), and of the whole reserved `mr-*` tag
/// namespace.
pub const UID_TAG_PREFIX: &str = "mr-";

/// The start of every reserved description line (the marker line is
/// `pve-operator: MachineRequest <namespace>/<name> uid=<uid>`).
pub const RESERVED_LINE_PREFIX: &str = "pve-operator:";

/// CEL on `spec.tags`: no tag in the reserved namespace ([`MANAGED_TAG`], [`UID_TAG_PREFIX`]`*`),
/// in any letter case. (The tag pattern already admits no whitespace to hide behind.)
pub const NO_RESERVED_TAG_RULE: &str = "self.all(t, !t.matches('(?i)^(mr-|pve-operator$)'))";

/// Why [`NO_RESERVED_TAG_RULE`] refuses a tag.
pub const RESERVED_TAG_MESSAGE: &str = "tags 'pve-operator' and 'mr-...' (in any letter case) are reserved: the controller marks the VMs it owns with them, and a request that set them could claim or disguise another request's VM; use other tags";

/// CEL on `spec.description`: no line that starts, after whitespace, with
/// [`RESERVED_LINE_PREFIX`] in any letter case. Stricter than the controller's reading of a
/// description (lines split at `\n` only): here a line also ends at `\r`, U+0085, U+2028 and
/// U+2029, and whitespace includes every Unicode space, so no spelling slips through.
pub const NO_RESERVED_LINE_RULE: &str =
    r"!self.matches(r'(?i)(^|[\n\r\x{85}\x{2028}\x{2029}])[\s\x{0B}\x{85}\pZ]*pve-operator:')";

/// Why [`NO_RESERVED_LINE_RULE`] refuses a description.
pub const RESERVED_LINE_MESSAGE: &str = "lines starting with 'pve-operator:' are reserved: the controller appends its ownership marker line to the description itself, and a request that wrote one could claim another request's VM; remove or reword that line";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_spell_the_reserved_names() {
        assert!(NO_RESERVED_TAG_RULE.contains(&format!("^({UID_TAG_PREFIX}|{MANAGED_TAG}$)")));
        assert!(NO_RESERVED_LINE_RULE.contains(&format!("*{RESERVED_LINE_PREFIX}')")));
        assert!(RESERVED_TAG_MESSAGE.contains(MANAGED_TAG));
        assert!(RESERVED_LINE_MESSAGE.contains(RESERVED_LINE_PREFIX));
    }
}
