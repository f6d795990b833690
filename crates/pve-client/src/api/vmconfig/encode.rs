//! [`VmConfig::to_params`]: every field checked and encoded as a create or update parameter, with
//! the checks of values that have no property-string format of their own (machine type, tags).

use std::net::IpAddr;

use super::cloudinit::{check_cipassword, is_unix_user};
use super::{Bios, Drive, OS_TYPES, VmConfig, encode_sshkeys, err};
use crate::api::{ensure, validate_dns_name};
use crate::error::Result;
use crate::propstring::{PropertyStringBuilder, check};
use crate::request::{ParamValue, Params};

/// The schema's `minimum` of `cores` (PVE 8.4 and 9.x; no maximum): the one bound the client
/// holds a value to. A larger number than the node has is Proxmox's to refuse at start.
pub const MIN_CORES: u32 = 1;
/// The schema's `minimum` of `sockets` (PVE 8.4 and 9.x; no maximum).
pub const MIN_SOCKETS: u32 = 1;

/// Refuses `value` of `key` below the schema's `minimum`.
fn at_least(key: &str, value: u32, minimum: u32) -> Result<()> {
    if value < minimum {
        return Err(err(
            key,
            format!("{value} is below the minimum of {minimum}"),
        ));
    }
    Ok(())
}

impl VmConfig {
    /// The parameters of this configuration (without `vmid`, `pool`, `start`).
    pub fn to_params(&self) -> Result<Params> {
        let mut p = Params::new();
        if let Some(n) = &self.name {
            validate_dns_name("name", n)?;
            p.str("name", n);
        }
        if let Some(c) = self.cores {
            at_least("cores", c, MIN_CORES)?;
            p.int("cores", i64::from(c));
        }
        if let Some(s) = self.sockets {
            at_least("sockets", s, MIN_SOCKETS)?;
            p.int("sockets", i64::from(s));
        }
        if let Some(cpu) = &self.cpu {
            let mut b = PropertyStringBuilder::new("cpu");
            b.default_value("cputype", cpu, check::word)?;
            p.str("cpu", b.build());
        }
        if let Some(m) = self.memory_mib {
            if m < 16 {
                return Err(err("memory", format!("{m} MiB is below the minimum of 16")));
            }
            // `[current=]<integer>` since 8.1; a plain integer also satisfies 8.0.
            p.str("memory", m.to_string());
        }
        if let Some(b) = self.balloon_mib {
            if let Some(m) = self.memory_mib
                && b > m
            {
                return Err(err("balloon", format!("{b} MiB exceeds memory ({m} MiB)")));
            }
            p.int(
                "balloon",
                i64::try_from(b).map_err(|_| err("balloon", "too large"))?,
            );
        }
        if let Some(h) = self.scsihw {
            p.str("scsihw", h.as_str());
        }
        for (slot, drive) in &self.drives {
            p.str(slot.to_string(), drive.encode(*slot)?);
        }
        let cloudinit_drives = self
            .drives
            .values()
            .filter(|d| matches!(d, Drive::CloudInit { .. }))
            .count();
        if cloudinit_drives > 1 {
            return Err(err("drives", "at most one cloud-init drive"));
        }
        if let Some(e) = &self.efidisk {
            p.str("efidisk0", e.encode()?);
        }
        if let Some(t) = &self.tpmstate {
            p.str("tpmstate0", t.encode()?);
        }
        for (i, dev) in &self.pci_devices {
            p.str(format!("hostpci{i}"), dev.encode(*i)?);
        }
        for (i, dev) in &self.usb_devices {
            p.str(format!("usb{i}"), dev.encode(*i)?);
        }
        for (i, nic) in &self.nics {
            if *i > 31 {
                return Err(err(&format!("net{i}"), "NICs are net0..=net31"));
            }
            p.str(format!("net{i}"), nic.encode(*i)?);
        }
        if let Some(u) = &self.ciuser {
            // Written unquoted into cloud-init's YAML (`user: NAME`): only a Linux user name,
            // so no YAML indicator ([ { * & ! | > ' " % @ # -), separator or line break.
            if !is_unix_user(u) {
                return Err(err(
                    "ciuser",
                    format!(
                        "{u:?} is not a user name (a lowercase letter or '_', then lowercase \
                         letters, digits, '_' and '-'; at most 32 characters)"
                    ),
                ));
            }
            p.str("ciuser", u);
        }
        if let Some(pw) = &self.cipassword {
            check_cipassword(pw.expose())?;
            p.set("cipassword", ParamValue::Secret(pw.clone()));
        }
        if !self.sshkeys.is_empty() {
            p.str("sshkeys", encode_sshkeys(&self.sshkeys)?);
        }
        for (i, ip) in &self.ipconfigs {
            if *i > 31 {
                return Err(err(
                    &format!("ipconfig{i}"),
                    "ipconfigs are ipconfig0..=ipconfig31",
                ));
            }
            p.str(format!("ipconfig{i}"), ip.encode(*i)?);
        }
        if !self.nameservers.is_empty() {
            let list: Vec<String> = self.nameservers.iter().map(IpAddr::to_string).collect();
            p.str("nameserver", list.join(" "));
        }
        if let Some(d) = &self.searchdomain {
            for name in d.split(' ') {
                validate_dns_name("searchdomain", name)?;
            }
            p.str("searchdomain", d);
        }
        if !self.boot_order.is_empty() {
            let mut b = PropertyStringBuilder::new("boot");
            b.push_list("order", &self.boot_order, check::boot_device)?;
            p.str("boot", b.build());
        }
        if let Some(o) = &self.ostype {
            if !OS_TYPES.contains(&o.as_str()) {
                return Err(err(
                    "ostype",
                    format!("{o:?} is not one of {}", OS_TYPES.join(", ")),
                ));
            }
            p.str("ostype", o);
        }
        if let Some(a) = self.agent {
            let mut b = PropertyStringBuilder::new("agent");
            b.push_bool("enabled", a.enabled);
            b.push_opt_bool("fstrim_cloned_disks", a.fstrim_cloned_disks);
            p.str("agent", b.build());
        }
        if let Some(bios) = self.bios {
            p.str(
                "bios",
                match bios {
                    Bios::Seabios => "seabios",
                    Bios::Ovmf => "ovmf",
                },
            );
        }
        if let Some(m) = &self.machine {
            if !is_machine_type(m) {
                return Err(err(
                    "machine",
                    format!("{m:?} is not a machine type like q35 or pc-q35-8.1"),
                ));
            }
            p.str("machine", m);
        }
        if !self.tags.is_empty() {
            for t in &self.tags {
                check_tag(t)?;
            }
            p.str("tags", self.tags.join(";"));
        }
        if let Some(d) = &self.description {
            if d.chars().count() > 8192 {
                return Err(err("description", "longer than 8192 characters"));
            }
            if d.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err(err(
                    "description",
                    "must not contain control characters other than newline and tab",
                ));
            }
            p.str("description", d);
        }
        if let Some(u) = &self.smbios_uuid {
            let mut b = PropertyStringBuilder::new("smbios1");
            b.push("uuid", u, check::uuid)?;
            p.str("smbios1", b.build());
        }
        if let Some(o) = self.onboot {
            p.bool("onboot", o);
        }
        Ok(p)
    }
}

/// Whether `m` is a QEMU machine type as PVE 8.4's schema allows (`machine` `type`, at most 40
/// characters): `pc`, `q35`, `virt`, `pc[-i440fx]-X.Y[+pveN][.pxe]`, `pc-q35-X.Y[+pveN][.pxe]`,
/// `virt[-X.Y][+pveN]`.
fn is_machine_type(m: &str) -> bool {
    /// Strips `\d+(\.\d+)+`.
    fn version(s: &str) -> Option<&str> {
        let mut rest = s.strip_prefix(|c: char| c.is_ascii_digit())?;
        rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        let mut parts = 0;
        while let Some(r) = rest.strip_prefix('.')
            && r.starts_with(|c: char| c.is_ascii_digit())
        {
            rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
            parts += 1;
        }
        (parts > 0).then_some(rest)
    }
    /// Strips `(\+pve\d+)?`.
    fn pve_suffix(s: &str) -> &str {
        match s.strip_prefix("+pve") {
            Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => {
                r.trim_start_matches(|c: char| c.is_ascii_digit())
            }
            _ => s,
        }
    }
    if m.len() > 40 {
        return false;
    }
    if matches!(m, "pc" | "q35" | "virt") {
        return true;
    }
    let versioned = ["pc-i440fx-", "pc-q35-", "pc-"]
        .iter()
        .find_map(|p| m.strip_prefix(p).and_then(version));
    if let Some(rest) = versioned {
        let rest = pve_suffix(rest);
        return rest.is_empty() || rest == ".pxe";
    }
    match m.strip_prefix("virt") {
        Some(rest) => {
            let rest = match rest.strip_prefix('-') {
                Some(r) => match version(r) {
                    Some(r) => r,
                    None => return false,
                },
                None => rest,
            };
            pve_suffix(rest).is_empty()
        }
        None => false,
    }
}

fn check_tag(tag: &str) -> Result<()> {
    let mut chars = tag.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'));
    ensure(ok, "tags", || {
        format!("{tag:?} is not a Proxmox tag (letters, digits, '_', then also '-', '+', '.')")
    })
}
