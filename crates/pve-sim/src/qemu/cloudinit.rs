//! Cloud-init: the options as last generated (pending changes), regeneration, and the generated
//! user, network and meta data (`/cloudinit`, `/cloudinit/dump`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::drive::nic_macs;
use super::{load, load_mut};
use crate::error::ApiError;
use crate::router::{Ctx, Reply};
use crate::state::Vm;

/// Whether `key` is a cloud-init option.
pub fn is_cloudinit_key(key: &str) -> bool {
    matches!(
        key,
        "ciuser"
            | "cipassword"
            | "citype"
            | "cicustom"
            | "ciupgrade"
            | "sshkeys"
            | "nameserver"
            | "searchdomain"
    ) || key
        .strip_prefix("ipconfig")
        .is_some_and(|n| n.parse::<u32>().is_ok())
}

/// Records the current cloud-init options as generated (VM start, `PUT .../cloudinit`).
pub fn regenerate(vm: &mut Vm) {
    vm.cloudinit = vm
        .conf
        .iter()
        .filter(|(k, _)| is_cloudinit_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
}

/// `GET .../cloudinit`: each option with the value used for the current image and, when it
/// changed since, the pending one.
pub(super) fn pending(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vm = load(&ctx.sim.state, &node, ctx.vmid()?)?;
    let current: BTreeMap<&String, &String> = vm
        .conf
        .iter()
        .filter(|(k, _)| is_cloudinit_key(k))
        .collect();
    let mut keys: Vec<&String> = current.keys().copied().chain(vm.cloudinit.keys()).collect();
    keys.sort();
    keys.dedup();
    let mask = |k: &str, v: &str| {
        if k == "cipassword" {
            "**********".to_string()
        } else {
            v.to_string()
        }
    };
    let mut out = Vec::new();
    for k in keys {
        let mut e = Map::new();
        e.insert("key".into(), json!(k));
        let generated = vm.cloudinit.get(k);
        if let Some(v) = generated {
            e.insert("value".into(), json!(mask(k, v)));
        }
        match current.get(k) {
            Some(v) if generated != Some(*v) => {
                e.insert("pending".into(), json!(mask(k, v)));
            }
            None => {
                e.insert("delete".into(), json!(1));
            }
            _ => {}
        }
        out.push(Value::Object(e));
    }
    Ok(Value::Array(out).into())
}

/// `PUT .../cloudinit`: regenerate the image from the current options.
pub(super) fn update(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let vmid = ctx.vmid()?;
    let vm = load_mut(&mut ctx.sim.state, &node, vmid)?;
    regenerate(vm);
    Ok(Value::Null.into())
}

/// `GET .../cloudinit/dump?type=user|network|meta`: the generated data (NoCloud format).
pub(super) fn dump(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
    let node = ctx.param("node")?;
    let kind = ctx.param("type")?;
    let vm = load(&ctx.sim.state, &node, ctx.vmid()?)?;
    let text = match kind.as_str() {
        "user" => user_data(vm),
        "network" => network_data(vm),
        _ => {
            let digest = ring::digest::digest(
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                format!("{}{}", user_data(vm), network_data(vm)).as_bytes(),
            );
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            format!("instance-id: {hex}\n")
        }
    };
    Ok(Value::String(text).into())
}

fn user_data(vm: &Vm) -> String {
    let name = vm.name();
    let mut out = format!("#cloud-config\nhostname: {name}\nmanage_etc_hosts: true\n");
    if let Some(domain) = vm.conf.get("searchdomain") {
        out.push_str(&format!("fqdn: {name}.{domain}\n"));
    }
    if let Some(user) = vm.conf.get("ciuser") {
        out.push_str(&format!("user: {user}\n"));
    }
    if vm.conf.contains_key("cipassword") {
        out.push_str("password: $5$pve-sim$redacted\n");
    }
    if let Some(keys) = vm.conf.get("sshkeys") {
        let decoded = percent_encoding::percent_decode_str(keys)
            .decode_utf8_lossy()
            .to_string();
        out.push_str("ssh_authorized_keys:\n");
        for key in decoded.lines().filter(|l| !l.trim().is_empty()) {
            out.push_str(&format!("  - {key}\n"));
        }
    }
    out.push_str("chpasswd:\n  expire: False\nusers:\n  - default\n");
    let upgrade = vm.conf.get("ciupgrade").is_none_or(|v| v == "1");
    out.push_str(&format!("package_upgrade: {upgrade}\n"));
    out
}

fn network_data(vm: &Vm) -> String {
    let mut out = String::from("version: 1\nconfig:\n");
    for (n, mac) in nic_macs(&vm.conf) {
        out.push_str(&format!(
            "    - type: physical\n      name: eth{n}\n      mac_address: '{mac}'\n      subnets:\n"
        ));
        let ipconfig = vm
            .conf
            .get(&format!("ipconfig{n}"))
            .cloned()
            .unwrap_or_default();
        let field = |name: &str| {
            ipconfig
                .split(',')
                .find_map(|p| p.strip_prefix(name).map(str::to_string))
        };
        match field("ip=") {
            Some(ip) if ip != "dhcp" => {
                let (addr, prefix) = ip.split_once('/').unwrap_or((ip.as_str(), "24"));
                out.push_str(&format!(
                    "      - type: static\n        address: '{addr}'\n        netmask: '{}'\n",
                    netmask(prefix.parse().unwrap_or(24))
                ));
                if let Some(gw) = field("gw=") {
                    out.push_str(&format!("        gateway: '{gw}'\n"));
                }
            }
            _ => out.push_str("      - type: dhcp4\n"),
        }
    }
    let nameservers: Vec<&str> = vm
        .conf
        .get("nameserver")
        .map(|n| n.split_whitespace().collect())
        .unwrap_or_default();
    if !nameservers.is_empty() || vm.conf.contains_key("searchdomain") {
        out.push_str("    - type: nameserver\n      address:\n");
        for ns in nameservers {
            out.push_str(&format!("      - '{ns}'\n"));
        }
        if let Some(domain) = vm.conf.get("searchdomain") {
            out.push_str(&format!("      search:\n      - '{domain}'\n"));
        }
    }
    out
}

fn netmask(prefix: u32) -> String {
    let bits: u32 = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    };
    std::net::Ipv4Addr::from(bits).to_string()
}

#[cfg(test)]
mod tests {
    use super::super::typed_value;
    use super::*;

    #[test]
    fn netmask_from_prefix() {
        assert_eq!(netmask(24), "255.255.255.0");
        assert_eq!(netmask(16), "255.255.0.0");
        assert_eq!(netmask(0), "0.0.0.0");
    }

    #[test]
    fn typed_values_of_cloud_init_keys_are_strings() {
        assert_eq!(typed_value("ciuser", "ubuntu"), json!("ubuntu"));
        assert!(
            is_cloudinit_key("ipconfig3")
                && !is_cloudinit_key("ipconfigX")
                && !is_cloudinit_key("name")
        );
    }
}
