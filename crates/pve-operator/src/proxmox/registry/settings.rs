//! The Proxmox settings of an identity: read from its Secret ([`raw_config_from_secret`]) and
//! checked against the identity's `spec.endpoint` (the Secret's `url` is authoritative).

use k8s_openapi::api::core::v1::Secret;
use pve_client::PveConfig;
use pve_client::config::RawProxmoxConfig;

/// Why an identity's Secret and `spec.endpoint` give no settings.
#[derive(Debug)]
pub(super) enum Unresolved {
    /// The Secret's settings are invalid.
    Settings(pve_client::PveError),
    /// `spec.endpoint` is no URL the controller accepts.
    EndpointInvalid(pve_client::PveError),
    /// Both are valid and differ.
    Mismatch { endpoint: String, url: String },
}

/// The settings of an identity: its Secret's, whose `url` is authoritative. A Secret without a
/// `url` takes `spec.endpoint`; a `spec.endpoint` that is set must be a valid endpoint equal to
/// the Secret's `url`. A problem of `spec.endpoint` is reported as the endpoint's, never as the
/// Secret's `url`.
pub(super) fn resolve_identity(
    raw: RawProxmoxConfig,
    endpoint: Option<&str>,
) -> Result<PveConfig, Unresolved> {
    let Some(endpoint) = endpoint else {
        return raw.resolve().map_err(Unresolved::Settings);
    };
    let mut stated = raw.clone();
    stated.url = Some(endpoint.to_string());
    // What is wrong with the url of `stated` is the endpoint's; anything else, the Secret's.
    let endpoints = |error: pve_client::PveError| match &error {
        pve_client::PveError::Config { key, .. } if key == "url" => {
            Unresolved::EndpointInvalid(error)
        }
        _ => Unresolved::Settings(error),
    };
    if raw.url.as_deref().is_none_or(|u| u.trim().is_empty()) {
        // A Secret with only credentials: the identity's endpoint is where they go.
        return stated.resolve().map_err(endpoints);
    }
    let config = raw.resolve().map_err(Unresolved::Settings)?;
    let stated = stated.resolve().map_err(endpoints)?;
    if stated.url != config.url {
        return Err(Unresolved::Mismatch {
            endpoint: stated.url,
            url: config.url,
        });
    }
    Ok(config)
}

/// The credentials of an identity's Secret: a `config.yaml` key in the source documents'
/// `proxmox:` format, or the keys `url`, `tokenID`/`tokenSecret` or `username`/`password`/
/// `realm` directly. A Secret cannot name a file (`caBundleFile`): that would read the
/// controller's own filesystem.
pub fn raw_config_from_secret(secret: &Secret) -> Result<RawProxmoxConfig, String> {
    let data = secret.data.clone().unwrap_or_default();
    let text = |key: &str| -> Result<Option<String>, String> {
        data.get(key)
            .map(|v| {
                String::from_utf8(v.0.clone()).map_err(|_| format!("key {key} is not UTF-8 text"))
            })
            .transpose()
    };
    let raw = if let Some(doc) = text("config.yaml")? {
        RawProxmoxConfig::from_yaml_str(&doc)
            .map_err(|e| format!("key config.yaml is not a valid proxmox: config: {e}"))?
    } else {
        let raw = RawProxmoxConfig {
            url: text("url")?,
            token_id: text("tokenID")?,
            token_secret: text("tokenSecret")?.map(Into::into),
            username: text("username")?,
            password: text("password")?.map(Into::into),
            realm: text("realm")?,
            ..RawProxmoxConfig::default()
        };
        if raw.token_id.is_none() && raw.username.is_none() {
            return Err("has none of the keys config.yaml, tokenID/tokenSecret or username/password; add one of them".into());
        }
        raw
    };
    if raw
        .ca_bundle_file
        .as_deref()
        .is_some_and(|f| !f.trim().is_empty())
    {
        return Err("caBundleFile names a file on the controller's own filesystem, which a Secret may not do; put the PEM text itself in caBundle".into());
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;
    use crate::proxmox::registry::IdentityError;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn a_secret_cannot_name_a_file_on_the_controllers_filesystem() {
        let doc = "proxmox:\n  url: https://pve:8006\n  caBundleFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n  tokenID: a@pve!t\n  tokenSecret: s\n";
        let error = raw_config_from_secret(&secret(&[("config.yaml", doc)])).expect_err("refused");
        assert!(
            error.contains("caBundleFile") && error.contains("caBundle"),
            "{error}"
        );
        assert!(
            !error.contains("/var/run"),
            "the path is not echoed: {error}"
        );
    }

    #[test]
    fn a_bad_spec_endpoint_is_the_endpoints_problem_and_never_echoes_a_password() {
        let doc = "proxmox:\n  url: https://pve:8006\n  tokenID: op@pve!ctl\n  tokenSecret: 00000000-0000-0000-0000-000000000000\n";
        let raw = || raw_config_from_secret(&secret(&[("config.yaml", doc)])).expect("valid");
        let config = resolve_identity(raw(), Some("https://pve:8006/api2/json")).expect("equal");
        assert_eq!(config.url, "https://pve:8006/api2/json");
        for endpoint in [
            "https://root:hunter2@pve:8006/api2/json",
            "https://pve:8006/api2/json%0d%0aX-Injected:%201",
        ] {
            let error = resolve_identity(raw(), Some(endpoint)).expect_err("refused");
            let Unresolved::EndpointInvalid(source) = error else {
                panic!("{endpoint}: {error:?}");
            };
            let text = IdentityError::EndpointInvalid { source }.to_string();
            assert!(text.starts_with("spec.endpoint cannot be used"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
        let other = resolve_identity(raw(), Some("https://elsewhere:8006")).expect_err("differs");
        assert!(matches!(other, Unresolved::Mismatch { .. }), "{other:?}");
        // Without a url in the Secret the endpoint is the url, and a bad one is still its own.
        let bare = raw_config_from_secret(&secret(&[
            ("tokenID", "op@pve!ctl"),
            ("tokenSecret", "00000000-0000-0000-0000-000000000000"),
        ]))
        .expect("valid");
        let error =
            resolve_identity(bare, Some("https://root:hunter2@pve:8006")).expect_err("refused");
        assert!(matches!(error, Unresolved::EndpointInvalid(_)), "{error:?}");
        // A bad key of the Secret stays the Secret's.
        let bad_token = raw_config_from_secret(&secret(&[
            ("tokenID", "not-a-token"),
            ("tokenSecret", "00000000-0000-0000-0000-000000000000"),
        ]))
        .expect("readable");
        let error = resolve_identity(bad_token, Some("https://pve:8006")).expect_err("refused");
        assert!(matches!(error, Unresolved::Settings(_)), "{error:?}");
    }

    #[test]
    fn a_secret_gives_config_yaml_or_the_keys_themselves() {
        let doc = "proxmox:\n  url: https://pve:8006\n  tokenID: a@pve!t\n  tokenSecret: s\n";
        let raw = raw_config_from_secret(&secret(&[("config.yaml", doc)])).expect("valid");
        assert_eq!(raw.url.as_deref(), Some("https://pve:8006"));
        let keys = raw_config_from_secret(&secret(&[
            ("url", "https://pve:8006"),
            ("tokenID", "a@pve!t"),
            ("tokenSecret", "s"),
        ]))
        .expect("valid");
        assert_eq!(keys.token_id.as_deref(), Some("a@pve!t"));
        let none = raw_config_from_secret(&secret(&[("password", "x")])).expect_err("refused");
        assert!(none.contains("tokenID"), "{none}");
    }
}
