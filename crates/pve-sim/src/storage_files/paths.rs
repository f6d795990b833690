//! Files of file-based storages as pve-storage names them: the normalised file name of an
//! upload or download (`normalize_content_filename`), the extension rules of each content type,
//! the directory of each content type, and what a volume name says (`parse_volname`).

use crate::config::StorageConfig;

/// pve-storage's `$SAFE_CHAR_CLASS_RE`: the characters a content file name keeps.
fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+' | '=' | '_')
}

/// `normalize_content_filename`: the last path component, every other character replaced by `_`.
pub fn normalize_filename(name: &str) -> String {
    let name = name.strip_suffix('\n').unwrap_or(name);
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    base.chars()
        .map(|c| if is_safe(c) { c } else { '_' })
        .collect()
}

/// `encode_text`: the task id of a `download` (no `:` or other separators in a UPID field).
pub fn encode_task_id(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c.to_string()
            } else {
                format!("\\x{:02x}", u32::from(c))
            }
        })
        .collect()
}

/// `name` ends in `.ext` (one of `exts`) after at least one character; the matching `ext`.
fn ending<'a>(name: &str, exts: &[&'a str], ignore_case: bool) -> Option<&'a str> {
    exts.iter().copied().find(|ext| {
        let suffix = format!(".{ext}");
        name.len() > suffix.len()
            && if ignore_case {
                name.to_ascii_lowercase().ends_with(&suffix)
            } else {
                name.ends_with(&suffix)
            }
    })
}

/// What a downloaded file of `content` named `name` (normalised) is stored as: its volume name
/// below the storage and its format; `Err` with the 400 text of `download_url`.
pub fn download_target(content: &str, name: &str) -> Result<(String, String), &'static str> {
    match content {
        "iso" => ending(name, &["iso", "img"], true)
            .map(|_| (format!("iso/{name}"), "iso".to_string()))
            .ok_or("wrong file extension"),
        "vztmpl" => ending(name, &["tar.gz", "tar.xz", "tar.zst", "tar.bz2"], true)
            .map(|_| (format!("vztmpl/{name}"), "tgz".to_string()))
            .ok_or("wrong file extension"),
        "import" => ending(name, &["ova", "qcow2", "raw", "vmdk"], false)
            .map(|ext| (format!("import/{name}"), ext.to_string()))
            .ok_or("invalid filename or wrong extension"),
        _ => Err("upload content-type is not allowed"),
    }
}

/// The mount point of a file-based storage (`path` in `storage.cfg`).
pub fn storage_path(s: &StorageConfig) -> String {
    match (s.r#type.as_str(), s.id.as_str()) {
        ("dir", "local") => "/var/lib/vz".to_string(),
        ("dir", id) => format!("/mnt/{id}"),
        (_, id) => format!("/mnt/pve/{id}"),
    }
}

/// The file behind `volname` (`iso/x.iso`, `import/x.qcow2`, `100/vm-100-disk-0.qcow2`).
pub fn file_path(s: &StorageConfig, volname: &str) -> String {
    let base = storage_path(s);
    match volname.split_once('/') {
        Some(("iso", name)) => format!("{base}/template/iso/{name}"),
        Some(("vztmpl", name)) => format!("{base}/template/cache/{name}"),
        Some(("import", name)) => format!("{base}/import/{name}"),
        _ => format!("{base}/images/{volname}"),
    }
}

/// What `parse_volname` says of a volume name: the content type and the owning VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolName {
    /// `iso`, `vztmpl`, `import`, `images`, `backup`.
    pub vtype: &'static str,
    /// The VM the volume belongs to (disk images, backups).
    pub owner: Option<u32>,
}

/// `parse_volname` of `volname` on storage `s`; `Err` with PVE's text for a name it cannot parse.
pub fn parse_volname(s: &StorageConfig, volname: &str) -> Result<VolName, String> {
    let vm_disk_owner = |name: &str| {
        let rest = name
            .strip_prefix("vm-")
            .or_else(|| name.strip_prefix("base-"))?;
        let (id, tail) = rest.split_once('-')?;
        (!tail.is_empty()).then(|| id.parse::<u32>().ok()).flatten()
    };
    let unparsable = if s.is_path_based() {
        format!("unable to parse directory volume name '{volname}'")
    } else {
        format!("unable to parse {} volume name '{volname}'", s.r#type)
    };
    if !s.is_path_based() {
        // Block storages hold only disk images: `vm-100-disk-0`, `base-9000-disk-0/vm-…`.
        let last = volname.rsplit('/').next().unwrap_or(volname);
        return vm_disk_owner(last)
            .map(|owner| VolName {
                vtype: "images",
                owner: Some(owner),
            })
            .ok_or(unparsable);
    }
    let plain = |name: &str| !name.is_empty() && !name.contains('/');
    let found = match volname.split_once('/') {
        Some(("iso", name)) if plain(name) && ending(name, &["iso", "img"], true).is_some() => {
            Some(("iso", None))
        }
        Some(("vztmpl", name)) if plain(name) => Some(("vztmpl", None)),
        Some(("import", name))
            if plain(name)
                && name.chars().all(is_safe)
                && ending(name, &["ova", "ovf", "qcow2", "raw", "vmdk"], false).is_some() =>
        {
            Some(("import", None))
        }
        Some(("backup", _)) => Some(("backup", None)),
        Some((dir, name)) if dir.parse::<u32>().is_ok() && !name.is_empty() => {
            let last = name.rsplit('/').next().unwrap_or(name);
            Some(("images", vm_disk_owner(last).or(dir.parse().ok())))
        }
        _ => None,
    };
    found
        .map(|(vtype, owner)| VolName { vtype, owner })
        .ok_or(unparsable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Size;

    fn storage(id: &str, ty: &str) -> StorageConfig {
        StorageConfig {
            id: id.into(),
            r#type: ty.into(),
            content: vec!["iso".into(), "import".into(), "images".into()],
            capacity: Size(1 << 30),
            shared: false,
            nodes: None,
        }
    }

    #[test]
    fn file_names_keep_their_last_component_and_safe_characters() {
        assert_eq!(normalize_filename("../etc/de bian.iso"), "de_bian.iso");
        assert_eq!(normalize_filename("a\\b+c=d.qcow2\n"), "b+c=d.qcow2");
        assert_eq!(encode_task_id("a+b.iso"), "a\\x2bb.iso");
    }

    #[test]
    fn each_content_type_has_its_endings_and_directory() {
        assert_eq!(
            download_target("iso", "Talos.ISO"),
            Ok(("iso/Talos.ISO".into(), "iso".into()))
        );
        assert_eq!(download_target("iso", ".iso"), Err("wrong file extension"));
        assert_eq!(
            download_target("import", "disk.qcow2"),
            Ok(("import/disk.qcow2".into(), "qcow2".into()))
        );
        assert_eq!(
            download_target("import", "disk.QCOW2"),
            Err("invalid filename or wrong extension")
        );
        let local = storage("local", "dir");
        assert_eq!(
            file_path(&local, "import/disk.raw"),
            "/var/lib/vz/import/disk.raw"
        );
        assert_eq!(
            file_path(&storage("nfs", "nfs"), "iso/a.iso"),
            "/mnt/pve/nfs/template/iso/a.iso"
        );
    }

    #[test]
    fn volume_names_tell_their_type_and_owner() {
        let local = storage("local", "dir");
        let vol = |n: &str| parse_volname(&local, n);
        assert_eq!(vol("iso/a.iso").map(|v| v.vtype), Ok("iso"));
        assert_eq!(vol("import/a.qcow2").map(|v| v.vtype), Ok("import"));
        assert_eq!(
            vol("100/vm-100-disk-0.qcow2"),
            Ok(VolName {
                vtype: "images",
                owner: Some(100)
            })
        );
        assert!(vol("iso/a.txt").is_err());
        let lvm = storage("local-lvm", "lvmthin");
        assert_eq!(
            parse_volname(&lvm, "vm-101-disk-1").map(|v| v.owner),
            Ok(Some(101))
        );
        assert_eq!(
            parse_volname(&lvm, "import/a.qcow2"),
            Err("unable to parse lvmthin volume name 'import/a.qcow2'".to_string())
        );
    }
}
