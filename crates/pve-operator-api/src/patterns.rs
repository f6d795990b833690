//! Formats of the strings that end up in Proxmox VE parameters, as regular expressions for the CRD
//! schema. Each follows the Proxmox format of the same name (`pve-storage-id`, `pve-node`, ...) and,
//! by construction, none admits `,`, `=`, `;`, whitespace or a newline, so no value can inject a
//! key into a Proxmox property string. The exceptions are [`SSH_PUBLIC_KEY`]'s comment and
//! [`FREE_TEXT`], which never reach a property string (each says what it refuses instead).

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
/// An ISO volume id, e.g. `local:iso/debian-12.7.0-amd64-netinst.iso`: one file in the storage's
/// `iso/` directory, whose name has no `..` (pve-client refuses a volume name with one).
pub const ISO_VOLUME: &str =
    r"^[a-z][a-z0-9\-_.]*[a-z0-9]:iso/[A-Za-z0-9][A-Za-z0-9_+\-]*(\.[A-Za-z0-9_+\-]+)*\.(iso|img)$";
/// A resource pool id (`pve-poolid`).
pub const POOL_ID: &str = r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$";
/// A QEMU CPU model, e.g. `host`, `x86-64-v2-AES`, `kvm64`.
pub const CPU_TYPE: &str = r"^[A-Za-z0-9_.+\-]+$";
/// A QEMU machine type, e.g. `q35`, `pc-q35-8.1`, `pc-i440fx-9.0+pve0`.
pub const MACHINE_TYPE: &str = r"^(pc|q35|pc-(i440fx|q35)-[0-9]+\.[0-9]+(\+pve[0-9]+)?)$";
/// A cluster resource mapping id (`pve-configid`), e.g. `gpu_a4000`: a lowercase letter, then
/// lowercase letters, digits and `_`.
pub const MAPPING_ID: &str = r"^[a-z][a-z0-9_]+$";
/// A mediated device type of a PCI mapping (vGPU profiles), e.g. `nvidia-63`, `i915-GVTg_V5_4`.
pub const MDEV_TYPE: &str = r"^[A-Za-z0-9_\-]+$";
/// A DNS name (VM names, search domains, template names), e.g. `web-1.example.com`.
pub const DNS_NAME: &str =
    r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)*$";
/// A cloud-init user name, e.g. `debian`.
pub const UNIX_USER: &str = r"^[a-z_][a-z0-9_\-]*$";
/// One OpenSSH public key, `TYPE BASE64 [COMMENT]`, e.g. `ssh-ed25519 AAAA... user@host`.
///
/// Proxmox VE writes each key unquoted into cloud-init's YAML (`  - <key>`), where U+0085,
/// U+2028 and U+2029 are line breaks, `: ` or a trailing `:` make a mapping and ` #` a comment.
/// So: `TYPE` is one of `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp{256,384,521}`,
/// `sk-ssh-ed25519@openssh.com`, `sk-ecdsa-sha2-nistp256@openssh.com` (no DSA, no options);
/// `BASE64` is padded base64 that starts with the encoding of `TYPE` itself (the key blob's
/// first field, so a type and key data that disagree are refused); the optional comment is
/// words separated by spaces, none starting with `#` or ending with `:`, with no character of
/// Unicode category Cc (NEL included) or Cf, no U+2028/U+2029 and no U+FFFE/U+FFFF. Trailing
/// spaces are allowed (the controller trims them). Valid RE2 and Rust `regex` syntax; the
/// controller (pve-client's `sshkey`) checks the same and decodes the key data too.
pub const SSH_PUBLIC_KEY: &str = r"^(?:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5|ssh-rsa AAAAB3NzaC1yc2[EFGH][A-Za-z0-9+/]|ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNT[YZab][A-Za-z0-9+/]|ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzOD[QRST][A-Za-z0-9+/]|ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1Mj[EFGH][A-Za-z0-9+/]|sk-ssh-ed25519@openssh\.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t|sk-ecdsa-sha2-nistp256@openssh\.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb2[0123][A-Za-z0-9+/])(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?(?: (?:[^ #\p{Cc}\p{Cf}\p{Zl}\p{Zp}\x{FFFE}\x{FFFF}][^ \p{Cc}\p{Cf}\p{Zl}\p{Zp}\x{FFFE}\x{FFFF}]*[^ :\p{Cc}\p{Cf}\p{Zl}\p{Zp}\x{FFFE}\x{FFFF}]|[^ #:\p{Cc}\p{Cf}\p{Zl}\p{Zp}\x{FFFE}\x{FFFF}])(?: +(?:[^ #\p{Cc}\p{Cf}\p{Zl}\p{Zp}\x{FFFE}\x{FFFF}][^ \p{Cc}\p{Cf}\p{Zl}\p{Zp}\x{FFFE}\x{FFFF}]*[^ :\p{Cc}\p{Cf}\p{Zl}\p{Zp}\x{FFFE}\x{FFFF}]|[^ #:\p{Cc}\p{Cf}\p{Zl}\p{Zp}\x{FFFE}\x{FFFF}]))*)? *$";
/// Free text for Proxmox (a VM's description): anything but a control character (Unicode
/// category Cc: U+0000-U+001F, U+007F-U+009F) other than tab and newline. Proxmox keeps the
/// description as comment lines of the VM's config file; pve-client's encoder refuses the same
/// characters, so admission refuses them before the controller records anything.
pub const FREE_TEXT: &str = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$";
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

/// An http(s) URL or URL prefix with a host and a path, without credentials or spaces.
pub const URL_PREFIX: &str = r"^[hH][tT][tT][pP][sS]?://[^/@?#\s\\]+/[^\s]*$";

#[cfg(test)]
mod tests {
    use super::*;

    /// `SSH_PUBLIC_KEY` assembled from its parts, to show (and pin) its structure.
    fn ssh_public_key_from_parts() -> String {
        const B64: &str = "[A-Za-z0-9+/]";
        // The base64 of `u32 length ++ type`: whole groups, then the group the type ends in.
        let prefixes = [
            r"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5".to_owned(),
            format!("ssh-rsa AAAAB3NzaC1yc2[EFGH]{B64}"),
            format!("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNT[YZab]{B64}"),
            format!("ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzOD[QRST]{B64}"),
            format!("ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1Mj[EFGH]{B64}"),
            r"sk-ssh-ed25519@openssh\.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t".to_owned(),
            format!(
                r"sk-ecdsa-sha2-nistp256@openssh\.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb2[0123]{B64}"
            ),
        ];
        let body = format!("(?:{B64}{{4}})*(?:{B64}{{2}}==|{B64}{{3}}=)?");
        let never = r"\p{Cc}\p{Cf}\p{Zl}\p{Zp}\x{FFFE}\x{FFFF}";
        // A word: not starting with '#', not ending with ':'.
        let word = format!("(?:[^ #{never}][^ {never}]*[^ :{never}]|[^ #:{never}])");
        format!(
            "^(?:{}){body}(?: {word}(?: +{word})*)? *$",
            prefixes.join("|")
        )
    }

    #[test]
    fn the_ssh_key_pattern_is_what_its_parts_say() {
        assert_eq!(SSH_PUBLIC_KEY, ssh_public_key_from_parts());
    }

    #[test]
    fn the_ssh_key_prefixes_are_the_base64_of_each_type() {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for key_type in [
            "ssh-ed25519",
            "ssh-rsa",
            "ecdsa-sha2-nistp256",
            "ecdsa-sha2-nistp384",
            "ecdsa-sha2-nistp521",
            "sk-ssh-ed25519@openssh.com",
            "sk-ecdsa-sha2-nistp256@openssh.com",
        ] {
            let mut header = (key_type.len() as u32).to_be_bytes().to_vec();
            header.extend_from_slice(key_type.as_bytes());
            // The characters fully determined by the header: 4 per whole 3-byte group, plus
            // those of a partial group whose 6 bits all come from the header.
            let mut fixed = String::new();
            let bits: Vec<bool> = header
                .iter()
                .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1 == 1))
                .collect();
            for chunk in bits.chunks_exact(6) {
                let v = chunk.iter().fold(0usize, |v, b| v << 1 | usize::from(*b));
                fixed.push(A[v] as char);
            }
            let escaped = key_type.replace('.', r"\.");
            assert!(
                SSH_PUBLIC_KEY.contains(&format!("{escaped} {fixed}")),
                "{key_type}: {fixed}"
            );
        }
    }
}
