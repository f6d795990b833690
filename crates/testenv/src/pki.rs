//! The throwaway PKI of one control plane: a CA, the API server's serving certificate, an admin
//! client certificate in `system:masters`, and the service-account signing key.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::Error;

/// PEM material written into the control plane's directory.
pub struct Pki {
    /// The CA certificate that signed both the serving and the client certificate.
    pub ca_cert: String,
    /// Serving certificate for 127.0.0.1 and localhost.
    pub serving_cert: String,
    /// Key of the serving certificate.
    pub serving_key: String,
    /// Admin client certificate (CN=testenv-admin, O=system:masters).
    pub admin_cert: String,
    /// Key of the admin client certificate.
    pub admin_key: String,
    /// Private key (PKCS#8) that signs service-account tokens.
    pub service_account_key: String,
    /// Its public half (PKIX), which verifies them.
    pub service_account_public_key: String,
}

impl Pki {
    /// Generates fresh keys and certificates (ECDSA P-256, fast to generate).
    pub fn generate() -> Result<Self, Error> {
        let pki = |e: rcgen::Error| Error::Pki(e.to_string());

        let ca_key = KeyPair::generate().map_err(pki)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "pve-operator testenv CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(pki)?;
        let ca = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate().map_err(pki)?;
        let mut serving = CertificateParams::new(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
            "kubernetes.default.svc".to_string(),
        ])
        .map_err(pki)?;
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving.signed_by(&serving_key, &ca).map_err(pki)?;

        let admin_key = KeyPair::generate().map_err(pki)?;
        let mut admin = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
        admin
            .distinguished_name
            .push(DnType::CommonName, "testenv-admin");
        admin
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = admin.signed_by(&admin_key, &ca).map_err(pki)?;

        let service_account_key = KeyPair::generate().map_err(pki)?;

        Ok(Self {
            ca_cert: ca_cert.pem(),
            serving_cert: serving_cert.pem(),
            serving_key: serving_key.serialize_pem(),
            admin_cert: admin_cert.pem(),
            admin_key: admin_key.serialize_pem(),
            service_account_public_key: service_account_key.public_key_pem(),
            service_account_key: service_account_key.serialize_pem(),
        })
    }
}
