use std::collections::HashMap;

use super::*;

const FP: &str = "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99";
const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

fn no_env(_: &str) -> Option<String> {
    None
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    move |k| map.get(k).cloned()
}

fn key_of(r: Result<PveConfig>) -> String {
    match r {
        Err(PveError::Config { key, .. }) => key,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn source_document_token_example_loads() {
    let cfg = PveConfig::from_yaml_str(
        r#"
proxmox:
  url: "https://pve1.example.com:8006/api2/json"
  insecureSkipVerify: true
  tokenID: "omni@pve!omni-provider"
  tokenSecret: "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
"#,
    )
    .unwrap();
    assert_eq!(cfg.url, "https://pve1.example.com:8006/api2/json");
    assert_eq!(cfg.tls, TlsTrust::InsecureSkipVerify);
    match cfg.credentials {
        Credentials::Token(t) => {
            assert_eq!(t.token_id, "omni@pve!omni-provider");
            assert_eq!(t.userid(), "omni@pve");
            assert_eq!(t.secret.expose(), "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn url_without_api_path_or_with_trailing_slash_is_normalized() {
    for url in [
        "https://pve:8006",
        "https://pve:8006/",
        "https://pve:8006/api2/json/",
        "https://pve:8006/api2/json",
    ] {
        let doc = format!("proxmox:\n  url: \"{url}\"\n  tokenID: a@pve!t1\n  tokenSecret: s\n");
        assert_eq!(
            PveConfig::from_yaml_str(&doc).unwrap().url,
            "https://pve:8006/api2/json",
            "{url}"
        );
    }
}

#[test]
fn bad_urls_name_the_url_key() {
    for url in [
        "pve:8006",
        "ftp://pve:8006",
        "https://pve:8006/api2/extjs",
        "https://root:pw@pve:8006",
        "https://pve:8006/api2/json?x=1",
    ] {
        let doc = format!("proxmox:\n  url: \"{url}\"\n  tokenID: a@pve!t1\n  tokenSecret: s\n");
        assert_eq!(key_of(PveConfig::from_yaml_str(&doc)), "url", "{url}");
    }
    assert_eq!(
        key_of(PveConfig::from_yaml_str(
            "proxmox:\n  tokenID: a@pve!t1\n  tokenSecret: s\n"
        )),
        "url"
    );
}

#[test]
fn username_with_separate_realm_or_inline_realm() {
    let separate = PveConfig::from_yaml_str(
        "proxmox:\n  url: https://pve:8006\n  username: omni\n  password: pw\n  realm: pve\n",
    )
    .unwrap();
    let inline = PveConfig::from_yaml_str(
        "proxmox:\n  url: https://pve:8006\n  username: omni@pve\n  password: pw\n",
    )
    .unwrap();
    let same_realm = PveConfig::from_yaml_str(
        "proxmox:\n  url: https://pve:8006\n  username: omni@pve\n  password: pw\n  realm: pve\n",
    )
    .unwrap();
    for cfg in [separate, inline, same_realm] {
        match cfg.credentials {
            Credentials::Password { userid, password } => {
                assert_eq!(userid, "omni@pve");
                assert_eq!(password.expose(), "pw");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(cfg.tls, TlsTrust::PublicRoots, "TLS is verified by default");
    }
}

#[test]
fn credential_mistakes_name_the_key() {
    let base = "proxmox:\n  url: https://pve:8006\n";
    let cases = [
        (
            "  tokenID: omni@pve!tk\n  tokenSecret: s\n  username: omni@pve\n  password: p\n",
            "tokenID",
        ),
        ("  tokenID: omni@pve!tk\n", "tokenSecret"),
        ("  tokenSecret: s\n", "tokenID"),
        ("  tokenID: omni@pve\n  tokenSecret: s\n", "tokenID"),
        ("  tokenID: omni!tk\n  tokenSecret: s\n", "tokenID"),
        ("  tokenID: omni@pve:t\n  tokenSecret: s\n", "tokenID"),
        (
            "  tokenID: omni@pve!tk\n  tokenSecret: \"a b\"\n",
            "tokenSecret",
        ),
        ("  username: omni\n  password: p\n", "realm"),
        (
            "  username: omni@pam\n  password: p\n  realm: pve\n",
            "realm",
        ),
        ("  username: omni@pve\n", "password"),
        ("  password: p\n", "username"),
        ("", "tokenID"),
    ];
    for (body, key) in cases {
        assert_eq!(
            key_of(PveConfig::from_yaml_str(&format!("{base}{body}"))),
            key,
            "{body}"
        );
    }
}

#[test]
fn unknown_keys_and_missing_section_are_refused() {
    let e = key_of(PveConfig::from_yaml_str(
        "proxmox:\n  url: https://pve:8006\n  tokenId: omni@pve!tk\n  tokenSecret: s\n",
    ));
    assert_eq!(e, "proxmox.tokenId");
    let e = key_of(PveConfig::from_yaml_str(
        "proxmox:\n  url: https://pve:8006\n  insecureSkipVerify: maybe\n  tokenID: omni@pve!tk\n  tokenSecret: s\n",
    ));
    assert_eq!(e, "proxmox.insecureSkipVerify");
    assert_eq!(key_of(PveConfig::from_yaml_str("proxmox: [")), "proxmox");
    assert_eq!(key_of(PveConfig::from_yaml_str("other: 1\n")), "proxmox");
}

#[test]
fn other_top_level_sections_are_ignored() {
    let cfg = PveConfig::from_yaml_str(
        "providerID: omni\nproxmox:\n  url: https://pve:8006\n  tokenID: omni@pve!tk\n  tokenSecret: s\n",
    );
    assert!(cfg.is_ok(), "{cfg:?}");
}

#[test]
fn fingerprint_and_ca_bundle() {
    let cfg = PveConfig::from_yaml_str(&format!(
        "proxmox:\n  url: https://pve:8006\n  tokenID: omni@pve!tk\n  tokenSecret: s\n  fingerprint: \"{}\"\n",
        FP.to_lowercase()
    ))
    .unwrap();
    match cfg.tls {
        TlsTrust::Fingerprint(fp) => assert_eq!(fp.to_string(), FP),
        other => panic!("{other:?}"),
    }
    for bad in [
        "AA:BB",
        "AABBCC",
        &FP.replace(':', ""),
        &FP.replacen("AA", "GG", 1),
        &format!("{FP}:00"),
    ] {
        let doc = format!(
            "proxmox:\n  url: https://pve:8006\n  tokenID: omni@pve!tk\n  tokenSecret: s\n  fingerprint: \"{bad}\"\n"
        );
        assert_eq!(
            key_of(PveConfig::from_yaml_str(&doc)),
            "fingerprint",
            "{bad}"
        );
    }
    let doc = format!(
        "proxmox:\n  url: https://pve:8006\n  tokenID: omni@pve!tk\n  tokenSecret: s\n  caBundle: |\n{}",
        PEM.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    assert_eq!(
        PveConfig::from_yaml_str(&doc).unwrap().tls,
        TlsTrust::CaBundle(PEM.trim().to_owned())
    );
    let doc = "proxmox:\n  url: https://pve:8006\n  tokenID: omni@pve!tk\n  tokenSecret: s\n  caBundle: /etc/pve/pve-root-ca.pem\n";
    assert_eq!(key_of(PveConfig::from_yaml_str(doc)), "caBundle");
}

#[test]
fn ca_bundle_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, PEM).unwrap();
    let doc = format!(
        "proxmox:\n  url: https://pve:8006\n  tokenID: omni@pve!tk\n  tokenSecret: s\n  caBundleFile: \"{}\"\n",
        path.display()
    );
    assert_eq!(
        PveConfig::from_yaml_str(&doc).unwrap().tls,
        TlsTrust::CaBundle(PEM.to_owned())
    );
    let missing = doc.replace("ca.pem", "missing.pem");
    assert_eq!(key_of(PveConfig::from_yaml_str(&missing)), "caBundleFile");
}

#[test]
fn conflicting_trust_settings_are_refused() {
    let base = "proxmox:\n  url: https://pve:8006\n  tokenID: omni@pve!tk\n  tokenSecret: s\n";
    let doc = format!("{base}  insecureSkipVerify: true\n  fingerprint: \"{FP}\"\n");
    assert_eq!(key_of(PveConfig::from_yaml_str(&doc)), "insecureSkipVerify");
    let r = PveConfig::load_with_env(
        Some(base),
        env(&[("PVE_FINGERPRINT", FP), ("PVE_CA_BUNDLE", PEM)]),
    );
    assert_eq!(key_of(r), "fingerprint");
    let r = PveConfig::load_with_env(
        Some(base),
        env(&[("PVE_CA_BUNDLE", PEM), ("PVE_CA_BUNDLE_FILE", "/x")]),
    );
    assert_eq!(key_of(r), "caBundle");
}

#[test]
fn environment_alone_supplies_every_key() {
    let cfg = PveConfig::load_with_env(
        None,
        env(&[
            ("PVE_URL", "https://10.0.0.5:8006"),
            ("PVE_USERNAME", "omni"),
            ("PVE_PASSWORD", "pw"),
            ("PVE_REALM", "pve"),
            ("PVE_FINGERPRINT", FP),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.url, "https://10.0.0.5:8006/api2/json");
    assert!(
        matches!(cfg.credentials, Credentials::Password { ref userid, .. } if userid == "omni@pve")
    );
    assert!(matches!(cfg.tls, TlsTrust::Fingerprint(_)));
    let cfg = PveConfig::load_with_env(
        None,
        env(&[
            ("PVE_URL", "https://pve:8006"),
            ("PVE_TOKEN_ID", "omni@pve!omni-provider"),
            ("PVE_TOKEN_SECRET", "11111111-2222-3333-4444-555555555555"),
            ("PVE_INSECURE_SKIP_VERIFY", "yes"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.tls, TlsTrust::InsecureSkipVerify);
}

#[test]
fn environment_overrides_the_file_and_empty_variables_are_unset() {
    let doc = "proxmox:\n  url: https://file:8006\n  insecureSkipVerify: true\n  tokenID: omni@pve!file\n  tokenSecret: filesecret\n";
    let cfg = PveConfig::load_with_env(
        Some(doc),
        env(&[
            ("PVE_URL", "https://env:8006/api2/json"),
            ("PVE_TOKEN_SECRET", "envsecret"),
            ("PVE_TOKEN_ID", ""),
            ("PVE_INSECURE_SKIP_VERIFY", "false"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.url, "https://env:8006/api2/json");
    assert_eq!(cfg.tls, TlsTrust::PublicRoots);
    match cfg.credentials {
        Credentials::Token(t) => {
            assert_eq!(t.token_id, "omni@pve!file");
            assert_eq!(t.secret.expose(), "envsecret");
        }
        other => panic!("{other:?}"),
    }
    let r = PveConfig::load_with_env(Some(doc), env(&[("PVE_INSECURE_SKIP_VERIFY", "maybe")]));
    assert_eq!(key_of(r), "insecureSkipVerify");
    assert!(PveConfig::load_with_env(Some(doc), no_env).is_ok());
}

#[test]
fn config_errors_never_show_secrets() {
    let doc = "proxmox:\n  url: https://pve:8006\n  tokenID: bad\n  tokenSecret: topsecret-value\n";
    let e = PveConfig::from_yaml_str(doc).unwrap_err();
    assert!(!e.to_string().contains("topsecret"), "{e}");
    let cfg = PveConfig::from_yaml_str(
        "proxmox:\n  url: https://pve:8006\n  tokenID: a@pve!tk\n  tokenSecret: topsecret-value\n",
    )
    .unwrap();
    assert!(!format!("{cfg:?}").contains("topsecret"));
}

#[test]
fn parse_errors_quote_key_names_but_no_value_of_the_document() {
    // Found by the config_yaml fuzz target: lines without `: ` make `proxmox:` one string, which
    // serde's `invalid type: string "..."` message used to quote whole, the secret included.
    for doc in [
        "proxmox:\n  tokenID:omni@pve!tk\n  tokenSecret:topsecret-value\n",
        "proxmox: {url: https://pve:8006, tokenSecret:topsecret-value}\n",
        "proxmox:\n  topsecret-value\n",
        "proxmox: 'topsecret-value'\n",
        "proxmox:\n  url: https://pve:8006\n  tokenID: a@pve!tk\n  tokenSecret: [topsecret-value]\n",
    ] {
        let e = PveConfig::from_yaml_str(doc).unwrap_err();
        let shown = format!("{e} / {e:?}");
        assert!(!shown.contains("topsecret"), "{doc:?}: {shown}");
        assert!(matches!(e, PveError::Config { .. }), "{doc:?}: {shown}");
    }
    // A key holding a backtick must not end the quoting early (found by the same target).
    let e =
        PveConfig::from_yaml_str("proxmox: {\"url`: x\\n  password: 'topsecret-value' \": 1}\n")
            .unwrap_err();
    assert!(!e.to_string().contains("topsecret"), "{e}");
    assert!(e.to_string().contains("not a key name"), "{e}");
    let e = PveConfig::from_yaml_str("proxmox:\n  12345678\n").unwrap_err();
    assert!(!e.to_string().contains("12345678"), "{e}");
    // What is not copied from a value still says what is wrong, naming the key.
    let e = PveConfig::from_yaml_str(
        "proxmox:\n  url: https://pve:8006\n  tokenId: omni@pve!tk\n  tokenSecret: s\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("`proxmox.tokenId`"), "{e}");
    assert!(e.to_string().contains("tokenID"), "{e}");
    let e = PveConfig::from_yaml_str("proxmox: 'topsecret-value'\n").unwrap_err();
    assert!(e.to_string().contains("invalid type: string"), "{e}");
}
