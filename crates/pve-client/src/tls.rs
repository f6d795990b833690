//! TLS trust for the HTTP client: public roots (default), a CA bundle, a pinned SHA-256
//! certificate fingerprint (a custom rustls verifier), or no verification (warns once).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::{Fingerprint, TlsTrust};
use crate::error::{PveError, Result};

static INSECURE_WARNED: AtomicBool = AtomicBool::new(false);

/// Applies `trust` to a reqwest client builder.
pub(crate) fn configure(
    builder: reqwest::ClientBuilder,
    trust: &TlsTrust,
) -> Result<reqwest::ClientBuilder> {
    match trust {
        TlsTrust::PublicRoots => Ok(builder),
        TlsTrust::CaBundle(pem) => {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
                PveError::config("caBundle", format!("cannot parse the PEM bundle: {e}"))
            })?;
            if certs.is_empty() {
                return Err(PveError::config(
                    "caBundle",
                    "the PEM bundle contains no certificate",
                ));
            }
            let mut b = builder.tls_built_in_root_certs(false);
            for c in certs {
                b = b.add_root_certificate(c);
            }
            Ok(b)
        }
        TlsTrust::Fingerprint(fp) => Ok(builder.use_preconfigured_tls(pinned_config(*fp)?)),
        TlsTrust::InsecureSkipVerify => {
            if !INSECURE_WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "insecureSkipVerify is set: the Proxmox VE certificate is NOT verified; \
                     set caBundle/caBundleFile or fingerprint instead"
                );
            }
            Ok(builder.danger_accept_invalid_certs(true))
        }
    }
}

/// A rustls client config that trusts exactly the certificate with fingerprint `fp`.
fn pinned_config(fp: Fingerprint) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedFingerprint {
        fingerprint: fp,
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            PveError::config(
                "fingerprint",
                format!("cannot build the TLS configuration: {e}"),
            )
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

/// The SHA-256 fingerprint of a DER certificate.
pub fn fingerprint_of(der: &[u8]) -> Fingerprint {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    Fingerprint(out)
}

/// The server presented a certificate other than the pinned one.
#[derive(Debug, thiserror::Error)]
#[error("server certificate fingerprint {got} does not match the pinned fingerprint {pinned}")]
struct FingerprintMismatch {
    got: Fingerprint,
    pinned: Fingerprint,
}

/// Accepts the server certificate iff its SHA-256 fingerprint is the pinned one, as Proxmox's
/// own tools do; the handshake signatures are still verified.
#[derive(Debug)]
struct PinnedFingerprint {
    fingerprint: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedFingerprint {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint_of(end_entity.as_ref());
        if got == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(
                    FingerprintMismatch {
                        got,
                        pinned: self.fingerprint,
                    },
                ))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
