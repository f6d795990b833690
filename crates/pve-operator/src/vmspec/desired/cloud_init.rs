//! The cloud-init part of the spec, checked (interfaces, addresses, keys) and in Proxmox terms.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use pve_client::api::vmconfig::{IpConfig, Ipv4Config};
use pve_client::sshkey::check_public_key;
use pve_operator_api::machine_request::MachineRequestSpec;

use super::hardware::{DesiredNic, nic_index};
use crate::vmspec::error::SpecError;

/// The cloud-init part of the spec.
#[derive(Debug, Clone)]
pub(crate) struct DesiredCloudInit {
    /// The drive's storage: `spec.cloudInit.storage`, else the first disk's.
    pub storage: Option<String>,
    pub user: Option<String>,
    pub sshkeys: Vec<String>,
    /// By NIC index: (`spec.cloudInit.ipConfigs[i]`, config).
    pub ipconfigs: BTreeMap<u8, (String, IpConfig)>,
    pub nameservers: Vec<IpAddr>,
    pub searchdomain: Option<String>,
}

pub(super) fn cloud_init(
    spec: &MachineRequestSpec,
    nics: &[DesiredNic],
) -> Result<Option<DesiredCloudInit>, SpecError> {
    let Some(ci) = &spec.cloud_init else {
        return Ok(None);
    };
    let mut ipconfigs = BTreeMap::new();
    for (i, c) in ci.ip_configs.iter().enumerate() {
        let field = format!("spec.cloudInit.ipConfigs[{i}]");
        let index = nic_index(&format!("{field}.interface"), &c.interface)?;
        if !nics.iter().any(|n| n.index == index) {
            return Err(SpecError::invalid(
                format!("{field}.interface"),
                format!("{} is not one of spec.networks[].name", c.interface),
            ));
        }
        let ipv4 = match (c.dhcp, &c.address) {
            (true, None) => Ipv4Config::Dhcp,
            (false, Some(cidr)) => Ipv4Config::Static {
                cidr: cidr.clone(),
                gateway: c
                    .gateway
                    .as_deref()
                    .map(|g| {
                        g.parse::<Ipv4Addr>().map_err(|_| {
                            SpecError::invalid(
                                format!("{field}.gateway"),
                                format!("{g:?} is not an IPv4 address"),
                            )
                        })
                    })
                    .transpose()?,
            },
            _ => {
                return Err(SpecError::invalid(
                    field,
                    "must set either dhcp: true or a static address, not both or neither",
                ));
            }
        };
        if c.dhcp && c.gateway.is_some() {
            return Err(SpecError::invalid(
                format!("{field}.gateway"),
                "needs a static address",
            ));
        }
        let ip = IpConfig {
            ipv4: Some(ipv4),
            ipv6: None,
        };
        if ipconfigs.insert(index, (field.clone(), ip)).is_some() {
            return Err(SpecError::invalid(
                format!("{field}.interface"),
                format!("{} has an earlier entry", c.interface),
            ));
        }
    }
    let nameservers = ci
        .nameservers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<IpAddr>().map_err(|_| {
                SpecError::invalid(
                    format!("spec.cloudInit.nameservers[{i}]"),
                    format!("{s:?} is not an IP address"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Each key goes unquoted into cloud-init's YAML: the same strict rule as at admission
    // (and again in pve-client's encoder), here with the key's decoded type checked too.
    let mut sshkeys = Vec::with_capacity(ci.ssh_keys.len());
    for (i, k) in ci.ssh_keys.iter().enumerate() {
        let key = k.trim_end_matches(' ');
        check_public_key(key)
            .map_err(|m| SpecError::invalid(format!("spec.cloudInit.sshKeys[{i}]"), m))?;
        sshkeys.push(key.to_owned());
    }
    Ok(Some(DesiredCloudInit {
        storage: ci
            .storage
            .clone()
            .or_else(|| spec.disks.first().map(|d| d.storage.clone())),
        user: ci.user.clone(),
        sshkeys,
        ipconfigs,
        nameservers,
        searchdomain: ci.search_domain.clone(),
    }))
}
