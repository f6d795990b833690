//! The in-handler permission checks of VM create and config update (qemu-server
//! `$check_vm_modify_config_perm`, `check_vnet_access`, `check_volume_access`).

use crate::error::ApiError;
use crate::qemu::drive::{Drive, Nic, is_drive_key, is_net_key, is_unused_key};
use crate::router::Ctx;
use crate::version::PveVersion;

// Not `affinity`: it is in no option list of `$check_vm_modify_config_perm` (8.4 or 9.x), so
// only root may set it (pve9-changes.md section 2.4 corrects wire-behaviour.md here).
const CPU: &[&str] = &[
    "cores", "cpu", "cpulimit", "cpuunits", "sockets", "vcpus", "numa",
];
// `allow-ksm` exists on 9.1 only (the 8.4 schema refuses it before any permission check).
const MEMORY: &[&str] = &["memory", "balloon", "shares", "allow-ksm"];
const HWTYPE: &[&str] = &[
    "scsihw",
    "machine",
    "vga",
    "acpi",
    "kvm",
    "smbios1",
    "tablet",
    "watchdog",
    "audio0",
    "rng0",
    "hotplug",
    "keyboard",
    "localtime",
    "tdf",
    "freeze",
    "arch",
    "cpu",
    "amd-sev",
    "spice_enhancements",
    "vmgenid",
];
const OPTIONS: &[&str] = &[
    "name",
    "description",
    "ostype",
    "agent",
    "onboot",
    "protection",
    "bios",
    "template",
    "startup",
    "autostart",
    "reboot",
    "startdate",
    "migrate_downtime",
    "migrate_speed",
    "hookscript",
    "keephugepages",
    "hugepages",
    "vmstatestorage",
    "tags",
    "meta",
    "lock",
    "bootdisk",
];
const DISK_OPTS: &[&str] = &[
    "boot",
    "bootdisk",
    "vmstatestorage",
    "efidisk0",
    "tpmstate0",
];
const CLOUDINIT: &[&str] = &[
    "ciuser",
    "cipassword",
    "citype",
    "cicustom",
    "ciupgrade",
    "sshkeys",
    "nameserver",
    "searchdomain",
];

/// Parameters only `root@pam` may use.
pub const ROOT_ONLY: &[&str] = &[
    "skiplock",
    "keepActive",
    "migratedfrom",
    "stateuri",
    "force-cpu",
    "migration_network",
    "migration_type",
    "targetstorage",
    "nets-host-mtu",
    "machine-running",
];

/// The name of the custom CPU model a `cpu` value uses (`custom-<name>`, as the positional
/// `cputype` or as `cputype=custom-<name>`), if any.
pub fn custom_cpu_model(value: &str) -> Option<&str> {
    value
        .split(',')
        .find_map(|part| match part.split_once('=') {
            None => Some(part),
            Some(("cputype", t)) => Some(t),
            Some(_) => None,
        })
        .and_then(|t| t.strip_prefix("custom-"))
}

/// 400 `Only root may use this option.` for root-only parameters used by others.
pub fn check_root_only(ctx: &Ctx<'_>) -> Result<(), ApiError> {
    if ctx.is_root() {
        return Ok(());
    }
    for p in ROOT_ONLY {
        if ctx.params.has(p) {
            return Err(ApiError::param(p, "Only root may use this option."));
        }
    }
    Ok(())
}

/// `check_vm_perm`: the privilege on the pool, else on `/vms/{vmid}`.
fn vm_perm(
    ctx: &Ctx<'_>,
    vmid: u32,
    pool: Option<&str>,
    privs: &[&str],
    any: bool,
) -> Result<(), ApiError> {
    if let Some(pool) = pool
        && ctx.check(&format!("/pool/{pool}"), privs, any)
    {
        return Ok(());
    }
    ctx.require(&format!("/vms/{vmid}"), privs, any)
}

/// The privilege an option needs: per option as in `$check_vm_modify_config_perm`.
pub fn check_option(
    ctx: &Ctx<'_>,
    vmid: u32,
    pool: Option<&str>,
    key: &str,
    value: Option<&str>,
) -> Result<(), ApiError> {
    if ctx.is_root() {
        return Ok(());
    }
    let one = |p: &'static str| vm_perm(ctx, vmid, pool, &[p], false);
    if key == "tags" {
        return Ok(());
    }
    if key == "startup" {
        one("VM.Config.Options")?;
        return ctx.require("/", &["Sys.Modify"], false);
    }
    if is_drive_key(key) || key == "cdrom" {
        let drive = value.and_then(|v| Drive::parse(if key == "cdrom" { "ide2" } else { key }, v));
        return match drive {
            Some(d) if d.is_cloudinit() => {
                one("VM.Config.Cloudinit")?;
                one("VM.Config.CDROM")
            }
            Some(d) if d.is_cdrom() || key == "cdrom" => one("VM.Config.CDROM"),
            _ => one("VM.Config.Disk"),
        };
    }
    if is_unused_key(key) || DISK_OPTS.contains(&key) {
        return one("VM.Config.Disk");
    }
    if key == "cpu"
        && let Some(model) = value.and_then(custom_cpu_model)
    {
        one("VM.Config.CPU")?;
        // qemu-server 9.1.13 (229a32ed): a custom model is a CPU mapping; before, and on 8.4,
        // reading the models needed Sys.Audit on /nodes.
        return match ctx.sim.state.config.pve_version {
            PveVersion::Pve8_4 => ctx.require("/nodes", &["Sys.Audit"], false),
            PveVersion::Pve9_1 => {
                ctx.require(&format!("/mapping/cpu/{model}"), &["Mapping.Use"], false)
            }
        };
    }
    if CPU.contains(&key) || key.starts_with("numa") {
        return one("VM.Config.CPU");
    }
    if MEMORY.contains(&key) {
        return one("VM.Config.Memory");
    }
    if HWTYPE.contains(&key) {
        return one("VM.Config.HWType");
    }
    if OPTIONS.contains(&key) {
        return one("VM.Config.Options");
    }
    if is_net_key(key) {
        return one("VM.Config.Network");
    }
    if CLOUDINIT.contains(&key) || key.starts_with("ipconfig") {
        return vm_perm(
            ctx,
            vmid,
            pool,
            &["VM.Config.Cloudinit", "VM.Config.Network"],
            true,
        );
    }
    if key.starts_with("serial") && value.is_some_and(|v| v == "socket") {
        return one("VM.Config.HWType");
    }
    if let Some(kind) = passthrough_kind(key) {
        passthrough(ctx, key, kind, value)?;
        return one("VM.Config.HWType");
    }
    Err(ApiError::internal(format!(
        "only root can set '{key}' config"
    )))
}

/// SDN.Use on `/sdn/zones/localnetwork/{bridge}[/{tag}]` for a NIC.
pub fn check_nic(ctx: &Ctx<'_>, value: &str) -> Result<(), ApiError> {
    if ctx.is_root() {
        return Ok(());
    }
    let Some(nic) = Nic::parse(value) else {
        return Ok(());
    };
    let Some(bridge) = nic.bridge() else {
        return Ok(());
    };
    let path = match nic.tag() {
        Some(tag) => format!("/sdn/zones/localnetwork/{bridge}/{tag}"),
        None => format!("/sdn/zones/localnetwork/{bridge}"),
    };
    ctx.require(&path, &["SDN.Use"], false)
}

/// Storage permissions of a drive: AllocateSpace for new disks, AllocateSpace|Audit for
/// existing volumes, Sys.Console for the physical CD-ROM; then the source of an `import-from`
/// ([`crate::qemu::import::check_source`]).
pub fn check_drive_storage(
    ctx: &Ctx<'_>,
    key: &str,
    value: &str,
    default_storage: Option<&str>,
) -> Result<(), ApiError> {
    check_drive_target(ctx, key, value, default_storage)?;
    match Drive::parse(key, value) {
        Some(d) => match d.opts.get("import-from") {
            Some(src) => crate::qemu::import::check_source(ctx, key, src),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

fn check_drive_target(
    ctx: &Ctx<'_>,
    key: &str,
    value: &str,
    default_storage: Option<&str>,
) -> Result<(), ApiError> {
    if ctx.is_root() {
        return Ok(());
    }
    let Some(drive) = Drive::parse(key, value) else {
        return Ok(());
    };
    if drive.file == "none" {
        return Ok(());
    }
    if drive.file == "cdrom" {
        return ctx.require("/", &["Sys.Console"], false);
    }
    if drive.is_cloudinit() || drive.new_disk(default_storage).is_some() {
        let storage = drive
            .new_disk(default_storage)
            .and_then(|(s, _)| s)
            .or_else(|| drive.storage().map(str::to_string));
        if let Some(s) = storage {
            return ctx.require(
                &format!("/storage/{s}"),
                &["Datastore.AllocateSpace"],
                false,
            );
        }
        return Ok(());
    }
    if let Some(s) = drive.storage() {
        return ctx.require(
            &format!("/storage/{s}"),
            &["Datastore.AllocateSpace", "Datastore.Audit"],
            true,
        );
    }
    Ok(())
}

/// `pci` for `hostpciN`, `usb` for `usbN`.
fn passthrough_kind(key: &str) -> Option<&'static str> {
    let index = |rest: &str| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit());
    if key.strip_prefix("hostpci").is_some_and(index) {
        Some("pci")
    } else if key.strip_prefix("usb").is_some_and(index) {
        Some("usb")
    } else {
        None
    }
}

/// qemu-server's `$check_vm_create_hostpci_perm` / `$check_vm_create_usb_perm` (8.0 and later):
/// a mapped device needs `Mapping.Use` on `/mapping/<kind>/<id>`; a real host device (a PCI
/// address, a USB id or port, anything but USB `spice`) only root may pass through.
fn passthrough(ctx: &Ctx<'_>, key: &str, kind: &str, value: Option<&str>) -> Result<(), ApiError> {
    let value = value.unwrap_or_default();
    let mut host = None;
    let mut mapping = None;
    for (i, part) in value.split(',').enumerate() {
        match part.split_once('=') {
            Some(("host", h)) => host = Some(h),
            Some(("mapping", m)) => mapping = Some(m),
            None if i == 0 => host = Some(part),
            _ => {}
        }
    }
    match (host, mapping) {
        (Some(h), _) if kind == "usb" && h.eq_ignore_ascii_case("spice") => Ok(()),
        (Some(_), None) => Err(ApiError::internal(format!(
            "only root can set '{key}' config for real devices"
        ))),
        (_, Some(id)) => ctx.require(&format!("/mapping/{kind}/{id}"), &["Mapping.Use"], false),
        (None, None) => Err(ApiError::internal(
            "either 'host' or 'mapping' must be set.".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::custom_cpu_model;

    #[test]
    fn custom_cpu_models_are_found_positionally_or_as_cputype() {
        assert_eq!(custom_cpu_model("custom-fast"), Some("fast"));
        assert_eq!(custom_cpu_model("custom-fast,flags=+aes"), Some("fast"));
        assert_eq!(custom_cpu_model("flags=+aes,cputype=custom-x"), Some("x"));
        assert_eq!(custom_cpu_model("host"), None);
        assert_eq!(custom_cpu_model("cputype=kvm64,flags=+custom-x"), None);
    }
}
