//! Formats of the strings that end up in Proxmox VE parameters, as regular expressions for the CRD
//! schema. Each follows the Proxmox format of the same name (`pve-storage-id`, `pve-node`, ...) and,
//! by construction, none admits `,`, `=`, `;`, whitespace or a newline, so no value can inject a
//! key into a Proxmox property string.

/// A Proxmox storage id (`pve-storage-id`), e.g. `local-lvm`.
pub const STORAGE_ID: &str = r"^[a-z][a-z0-9\-_.]*[a-z0-9]$";
/// A Proxmox node name (`pve-node`), e.g. `pve1`.
pub const NODE_NAME: &str = r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$";
/// A Linux bridge or SDN VNet name (`pve-bridge-id`), e.g. `vmbr0`.
pub const BRIDGE: &str = r"^[a-zA-Z][a-zA-Z0-9_.\-]*$";
/// A unicast MAC address, e.g. `BC:24:11:2A:3B:4C`.
pub const MAC_ADDRESS: &str = r"^[0-9A-Fa-f][02468aceACE](:[0-9A-Fa-f]{2}){5}$";
/// A Proxmox tag (`pve-tag`), e.g. `k8s`.
pub const TAG: &str = r"^[a-zA-Z0-9_][a-zA-Z0-9_\-+.]*$";
/// An ISO volume id, e.g. `local:iso/debian-12.7.0-amd64-netinst.iso`.
pub const ISO_VOLUME: &str =
    r"^[a-z][a-z0-9\-_.]*[a-z0-9]:iso/[A-Za-z0-9][A-Za-z0-9_.+\-]*\.(iso|img)$";
/// A resource pool id (`pve-poolid`).
pub const POOL_ID: &str = r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$";
/// A QEMU CPU model, e.g. `host`, `x86-64-v2-AES`, `kvm64`.
pub const CPU_TYPE: &str = r"^[A-Za-z0-9_.+\-]+$";
/// A QEMU machine type, e.g. `q35`, `pc-q35-8.1`, `pc-i440fx-9.0+pve0`.
pub const MACHINE_TYPE: &str = r"^(pc|q35|pc-(i440fx|q35)-[0-9]+\.[0-9]+(\+pve[0-9]+)?)$";
/// A DNS name (VM names, search domains, template names), e.g. `web-1.example.com`.
pub const DNS_NAME: &str =
    r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)*$";
/// A cloud-init user name, e.g. `debian`.
pub const UNIX_USER: &str = r"^[a-z_][a-z0-9_\-]*$";
/// One OpenSSH public key on one line, e.g. `ssh-ed25519 AAAA... user@host`.
pub const SSH_PUBLIC_KEY: &str = r"^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$";
/// A disk slot: bus and index as Proxmox names them, e.g. `scsi0`, `virtio1`, `sata0`, `ide1`.
pub const DISK_SLOT: &str = r"^(scsi([0-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])|sata[0-5]|ide[0-3])$";
/// A network interface slot, e.g. `net0`.
pub const NIC_SLOT: &str = r"^net([0-9]|[12][0-9]|3[01])$";
/// A SHA-256 certificate fingerprint as Proxmox shows it, e.g. `AB:CD:...` (32 bytes).
pub const SHA256_FINGERPRINT: &str = r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31}$";
/// A Kubernetes object name (DNS-1123 subdomain).
pub const OBJECT_NAME: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A Kubernetes namespace name (DNS-1123 label).
pub const NAMESPACE_NAME: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
