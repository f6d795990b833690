//! The simulator's TLS identity: a generated CA (like `pve-root-ca.pem`) and a node certificate
//! signed by it (like `pve-ssl.pem`), and the node certificate's SHA-256 fingerprint in PVE's
//! colon-separated uppercase hex form.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, pem::PemObject};
use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// PEM-encoded certificates and key; serialisable so that a persisted simulator keeps its
/// fingerprint across restarts.
#[derive(Clone, Serialize, Deserialize)]
pub struct TlsMaterial {
    /// The CA certificate (trust this in clients).
    pub ca_pem: String,
    /// The node certificate.
    pub cert_pem: String,
    /// The node certificate's private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("key_pem", &"***")
            .finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// Generates a CA and a node certificate for `localhost`, `127.0.0.1`, `::1` and the node names.
    pub fn generate(node_names: &[String]) -> Result<Self, SimError> {
        let tls = |e: rcgen::Error| SimError::Tls(e.to_string());
        let ca_key = KeyPair::generate().map_err(tls)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Proxmox Virtual Environment (pve-sim)");
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "PVE Cluster Manager CA");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(tls)?;

        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        names.extend(node_names.iter().cloned());
        let leaf_key = KeyPair::generate().map_err(tls)?;
        let mut leaf_params = CertificateParams::new(names).map_err(tls)?;
        let cn = node_names.first().map(String::as_str).unwrap_or("pve");
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, format!("{cn}.pve-sim"));
        leaf_params
            .distinguished_name
            .push(DnType::OrganizationName, "PVE Cluster Node");
        let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(tls)?;
        Ok(Self {
            ca_pem: ca.pem(),
            cert_pem: leaf.pem(),
            key_pem: leaf_key.serialize_pem(),
        })
    }

    fn cert_der(&self) -> Result<CertificateDer<'static>, SimError> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .map_err(|e| SimError::Tls(e.to_string()))
    }

    /// SHA-256 fingerprint of the node certificate, `AB:CD:...` (as `pvenode cert info` shows it).
    pub fn fingerprint(&self) -> Result<String, SimError> {
        let der = self.cert_der()?;
        Ok(fingerprint_of(der.as_ref()))
    }

    /// A rustls server configuration serving the node certificate and the CA chain, HTTP/1.1 only.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, SimError> {
        let tls = |e: rustls::Error| SimError::Tls(e.to_string());
        let ca = CertificateDer::from_pem_slice(self.ca_pem.as_bytes())
            .map_err(|e| SimError::Tls(e.to_string()))?;
        let key = PrivatePkcs8KeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| SimError::Tls(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der()?, ca], PrivateKeyDer::Pkcs8(key))
            .map_err(tls)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// SHA-256 of `der` as uppercase hex bytes joined by `:`.
pub fn fingerprint_of(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_colon_separated_uppercase_sha256() {
        let tls = TlsMaterial::generate(&["pve".to_string()]).expect("generate");
        let fp = tls.fingerprint().expect("fingerprint");
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.split(':').all(|b| {
            b.len() == 2
                && b.chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        }));
        assert!(tls.server_config().is_ok());
    }
}
