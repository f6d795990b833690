//! Comparing what Proxmox returns from `GET .../config` with the spec: descriptions stored as
//! comment lines (read back without trailing whitespace), tags normalised by updates. Reading the
//! values themselves (drives, sizes, SSH keys, booleans, property strings) is pve-client's
//! ([`pve_client::api::vmconfig::VmConfigView`]).

/// One GiB in bytes.
pub(crate) const GIB: u64 = 1 << 30;

/// Whether `s` is a UUID (`8-4-4-4-12` hex digits).
pub(crate) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, l)| g.len() == l && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A description as comparable text: Proxmox stores it as `#` lines, drops trailing blank
/// lines, and (by version) may return it with a trailing newline.
pub(crate) fn normalise_description(text: &str) -> String {
    text.replace("\r\n", "\n").trim_end().to_owned()
}

/// Tags as a comparable set: lowercase, sorted, without duplicates (what a config update
/// makes of them).
pub(crate) fn normalise_tags<S: AsRef<str>>(tags: &[S]) -> Vec<String> {
    let mut list: Vec<String> = tags
        .iter()
        .map(|t| t.as_ref().trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    list.sort();
    list.dedup();
    list
}
