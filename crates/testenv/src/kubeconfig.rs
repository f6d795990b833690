//! The admin kubeconfig of a control plane.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

use crate::Error;
use crate::pki::Pki;

const NAME: &str = "testenv";

/// A kubeconfig whose only context authenticates as the admin client certificate.
pub fn admin(server_url: &str, pki: &Pki) -> Kubeconfig {
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: NAME.into(),
            cluster: Some(Cluster {
                server: Some(server_url.into()),
                certificate_authority_data: Some(STANDARD.encode(&pki.ca_cert)),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: NAME.into(),
            auth_info: Some(AuthInfo {
                client_certificate_data: Some(STANDARD.encode(&pki.admin_cert)),
                client_key_data: Some(STANDARD.encode(&pki.admin_key).into()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: NAME.into(),
            context: Some(Context {
                cluster: NAME.into(),
                user: Some(NAME.into()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some(NAME.into()),
        ..Default::default()
    }
}

/// Serialises a kubeconfig as YAML, as kubectl reads it.
pub fn to_yaml(config: &Kubeconfig) -> Result<String, Error> {
    serde_yaml::to_string(config).map_err(|e| Error::Kubeconfig(e.to_string()))
}
