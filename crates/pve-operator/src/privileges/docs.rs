//! The privilege table of `docs/permissions.md`, generated from [`Feature`](super::Feature).

use std::fmt::Write;

use pve_client::PveRelease;

use super::{Feature, VERSION_NOTES, VmScope};

/// The marker lines between which `docs/permissions.md` holds the generated table.
pub const BEGIN_MARKER: &str = "<!-- BEGIN GENERATED: pve-operator privileges --markdown -->";
/// See [`BEGIN_MARKER`].
pub const END_MARKER: &str = "<!-- END GENERATED -->";

/// The releases the table has a column for.
const COLUMNS: [(PveRelease, &str); 2] = [
    (PveRelease::NEWEST_CHECKED, "PVE 9.x"),
    (PveRelease::PVE_8_4, "PVE 8.4"),
];

/// A Markdown table: feature, privilege, ACL path, and whether each release checks it; then
/// the version notes.
pub fn markdown_table() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{BEGIN_MARKER}");
    let headers: Vec<&str> = COLUMNS.iter().map(|(_, name)| *name).collect();
    let _ = writeln!(
        out,
        "| feature | privilege | ACL path | {} |",
        headers.join(" | ")
    );
    let _ = writeln!(out, "|---|---|---|{}", ":---:|".repeat(COLUMNS.len()));
    for feature in Feature::all_with_placeholders() {
        for row in feature.rows() {
            let marks: Vec<&str> = COLUMNS
                .iter()
                .map(|(release, _)| {
                    if row.releases.include(*release) {
                        "yes"
                    } else {
                        "—"
                    }
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} | `{}` | `{}` | {} |",
                feature.describe(),
                row.privilege,
                row.scope.path(&VmScope::AllVms),
                marks.join(" | ")
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Version notes:");
    let _ = writeln!(out);
    for (privilege, note) in VERSION_NOTES {
        let _ = writeln!(out, "- `{privilege}`: {note}");
    }
    let _ = writeln!(out, "{END_MARKER}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/permissions.md must show exactly the code's table. Regenerate the block with
    /// `cargo run -p pve-operator -- privileges --markdown`.
    #[test]
    fn docs_permissions_md_shows_the_code_table() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/permissions.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = markdown_table();
        assert!(
            doc.contains(&generated),
            "{} does not contain the current privilege table; replace the block between the \
             GENERATED markers with the output of `cargo run -p pve-operator -- privileges --markdown`",
            path.display()
        );
    }
}
